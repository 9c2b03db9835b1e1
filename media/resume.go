package media

import (
	"fmt"
	"time"
)

// State is where a Stream is in its life. A stream is live while a publisher
// writes it; interrupted while the Registry holds it for its publisher to
// come back (Registry.Hold); ended once closed.
type State int

// Stream states.
const (
	StateLive State = iota
	StateInterrupted
	StateEnded
)

func (st State) String() string {
	switch st {
	case StateLive:
		return "live"
	case StateInterrupted:
		return "interrupted"
	case StateEnded:
		return "ended"
	}
	return fmt.Sprintf("State(%d)", int(st))
}

// resumeGuard is added to the end of the last frame written before an
// interruption when the resumed timeline is placed: the last frame lasts
// about this long (a video frame at 25 fps, two 20 ms Opus packets), so the
// first frame after the resume never lands on or before it.
const resumeGuard = 40 * time.Millisecond

// State returns the stream's state, since when it is in it, and, while
// interrupted, why the publisher left.
func (s *Stream) State() (st State, since time.Time, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.since, s.reason
}

// Resumes counts the times a new publisher took the stream over within its
// reconnect window.
func (s *Stream) Resumes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumes
}

// LastGap returns how long the stream's last interruption lasted (from Hold
// to the resuming Publish); zero before its first resume.
func (s *Stream) LastGap() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gap
}

// ResumeOrigin is for the publisher that resumed the stream: the local time
// at which its timeline's DTS is 0. A frame that arrives at time t is placed
// at DTS t - origin (in its track's clock), so the stream's timeline goes on
// after its last frame with the wall-clock time of the interruption added:
// outputs that pace by timestamps (RTMP, DASH's availability times, HLS
// PROGRAM-DATE-TIME beside media time) stay in step with real time, and each
// track's DTS stays strictly increasing. ok is false for a stream that has
// not been resumed (its publisher starts a timeline of its own).
func (s *Stream) ResumeOrigin() (origin time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.origin, s.resumes > 0
}

// interrupt marks the stream held: no writer, no keyframe hook.
func (s *Stream) interrupt(reason string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateLive {
		return false
	}
	s.state, s.since, s.reason = StateInterrupted, now, reason
	s.onKeyframe.Store(nil)
	return true
}

// resume hands the stream to a new publisher: it computes the resumed
// timeline's origin and marks the next frame of every track Discontinuity.
// The previous publisher has stopped writing (it called Hold).
func (s *Stream) resume(onKeyframeRequest func(), now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gap = now.Sub(s.since)
	var end time.Duration
	for i, t := range s.Tracks {
		if s.haveDTS[i] && t.ClockRate > 0 {
			// µs first: no overflow for days at 90 kHz.
			d := time.Duration(s.lastDTS[i]*1e6/int64(t.ClockRate)) * time.Microsecond
			end = max(end, d)
		}
		s.pendDisc[i] = true
	}
	last := s.lastWrite
	if last.IsZero() {
		last = s.since
	}
	s.origin = last.Add(-(end + resumeGuard))
	s.state, s.since, s.reason = StateLive, now, ""
	s.resumes++
	s.setKeyframeHook(onKeyframeRequest)
}

// sameTracks reports whether a resuming publisher's tracks are the held
// stream's: same count, kinds, codecs, clock rates and channels.
func sameTracks(a []*Track, b []*Track) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Kind != y.Kind || x.Codec != y.Codec || x.ClockRate != y.ClockRate || x.Channels != y.Channels {
			return false
		}
	}
	return true
}
