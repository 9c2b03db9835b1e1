package recorder

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/state"
	"github.com/whipcast/whipcast/transmux"
)

// Errors of on-demand recording (Start, Stop).
var (
	// ErrNotLive: the stream is not being published.
	ErrNotLive = errors.New("recorder: stream is not live")
	// ErrRecording: Start on a stream already being recorded.
	ErrRecording = errors.New("recorder: stream is already being recorded")
	// ErrNotRecording: Stop on a stream not being recorded.
	ErrNotRecording = errors.New("recorder: stream is not being recorded")
	// ErrTooSoon: a new recording would reuse the key of the one that just
	// ended (keys have one-second resolution).
	ErrTooSoon = errors.New("recorder: a recording of this stream started this second; try again in a second")
)

// Active describes a recording in progress.
type Active struct {
	// Stream is the stream name.
	Stream string `json:"stream"`
	// Key is the key prefix of the recording's objects, ending in "/".
	Key string `json:"key"`
	// Started is when the recording started.
	Started time.Time `json:"started"`
	// State is live while every segment is being recorded, retrying
	// while storage does not keep up and segments are dropped (the
	// recording resumes at the next segment once it caught up): the
	// outputs' one model (outputs/state).
	State state.State `json:"state"`
	// Error says why the state is retrying.
	Error string `json:"error,omitempty"`
	// DroppedSegments counts the segments (of any track) left out of the
	// recording because storage did not keep up; each run of them is a
	// discontinuity in the recording.
	DroppedSegments int `json:"dropped_segments,omitempty"`
}

// EventKind tells the recorder's events apart.
type EventKind int

// Recorder events, passed to Settings.OnEvent.
const (
	// EventStarted: a recording started.
	EventStarted EventKind = iota + 1
	// EventFinished: a recording was finalised (playlists, MPD and MP4
	// spooled; they reach the store through the spool).
	EventFinished
	// EventFailed: a recording could not be finalised; it is retried on
	// the next start.
	EventFailed
	// EventRetrying: storage did not keep up with a recording; its
	// segments are dropped until it does (Err says so in words).
	EventRetrying
	// EventResumed: storage caught up and the recording goes on after a
	// gap of Dropped segments in all.
	EventResumed
)

// Event is one recording event.
type Event struct {
	Kind   EventKind
	Stream string
	// Key is the recording's key prefix.
	Key string
	// Err is set for EventFailed and EventRetrying.
	Err error
	// Dropped counts the segments the recording has dropped so far (set
	// for EventResumed).
	Dropped int
}

// tap is the recorder's sink for every transmuxed stream, recorded or not:
// it keeps the newest init segment of each track so that a recording can
// start at any segment boundary (Start), and forwards to the open session.
// Its Sink methods run on the transmuxer's goroutine; Start and Stop on an
// API goroutine. Lock order: tap.mu, then Recorder.mu.
type tap struct {
	r      *Recorder
	stream *media.Stream

	mu       sync.Mutex
	inits    map[*media.Track]*transmux.Init
	sess     *session
	started  time.Time
	lastBase string
	ended    bool
	pin      func() // releases the packaging Start acquired; nil if none
}

func (t *tap) OnInit(in *transmux.Init) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inits[in.Track] = in
	if t.sess != nil {
		t.sess.OnInit(in)
	}
}

func (t *tap) OnPart(*transmux.Part) {}

func (t *tap) OnSegment(seg *transmux.Segment) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sess != nil {
		t.sess.OnSegment(seg)
	}
}

func (t *tap) OnEnd(err error) {
	t.mu.Lock()
	t.ended = true
	if t.sess != nil {
		t.sess.OnEnd(err)
		t.sess = nil
	}
	t.unpinLocked()
	t.mu.Unlock()
	t.r.mu.Lock()
	if t.r.taps[t.stream.Name] == t {
		delete(t.r.taps, t.stream.Name)
	}
	t.r.mu.Unlock()
}

// unpinLocked lets go of the packaging Start wanted. Called with t.mu held
// (a release never blocks).
func (t *tap) unpinLocked() {
	if t.pin != nil {
		t.pin()
		t.pin = nil
	}
}

// start opens a session at the next segment. Called with t.mu held.
func (t *tap) startLocked(now time.Time) (Active, error) {
	if t.ended {
		return Active{}, ErrNotLive
	}
	if t.sess != nil {
		return Active{}, ErrRecording
	}
	now = now.UTC().Truncate(time.Second)
	if t.r.base(t.stream.Name, now) == t.lastBase {
		return Active{}, ErrTooSoon
	}
	t.r.mu.Lock()
	if t.r.closed {
		t.r.mu.Unlock()
		return Active{}, ErrNotLive
	}
	ss, err := t.r.newSession(t.stream, now)
	if err != nil {
		t.r.mu.Unlock()
		return Active{}, fmt.Errorf("recorder: %w", err)
	}
	t.r.sessions[ss] = struct{}{}
	t.r.wg.Add(1)
	t.r.mu.Unlock()
	go func() {
		defer t.r.wg.Done()
		ss.run()
		t.r.mu.Lock()
		delete(t.r.sessions, ss)
		t.r.mu.Unlock()
	}()
	// The inits in force, in track order, so the session's first segment
	// of each track has its init before it.
	for _, tr := range t.stream.Tracks {
		if in := t.inits[tr]; in != nil {
			ss.OnInit(in)
		}
	}
	t.sess, t.started, t.lastBase = ss, now, ss.info.Base
	t.r.emit(Event{Kind: EventStarted, Stream: t.stream.Name, Key: ss.info.Base})
	t.r.log.Info("recorder: recording", "stream", t.stream.Name, "key", ss.info.Base)
	return t.activeLocked(), nil
}

// activeLocked describes the open session. Called with t.mu held.
func (t *tap) activeLocked() Active {
	ss := t.sess
	a := Active{Stream: t.stream.Name, Key: ss.info.Base, Started: t.started, State: state.Live, DroppedSegments: ss.dropped}
	if ss.behind {
		a.State, a.Error = state.Retrying, ss.reason
	}
	return a
}

// Start records a live stream from its next segment on (segments begin at
// keyframes, so the recording starts with a picture), packaging the stream
// if nothing did (until Stop or the stream's end). It returns ErrNotLive,
// ErrRecording or ErrTooSoon.
func (r *Recorder) Start(stream string) (Active, error) {
	r.mu.Lock()
	sv := r.sv
	r.mu.Unlock()
	release := func() {}
	if sv != nil {
		rel, err := sv.Acquire(stream)
		if err != nil {
			return Active{}, ErrNotLive
		}
		release = rel
	}
	r.mu.Lock()
	t := r.taps[stream]
	r.mu.Unlock()
	if t == nil {
		release()
		return Active{}, ErrNotLive
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.startLocked(r.set.Now())
	if err != nil || t.ended {
		release()
		return a, err
	}
	t.unpinLocked()
	t.pin = release
	return a, nil
}

// Stop ends the recording of a live stream (it is finalised in the
// background, as at the end of a publish) and returns what it was. It
// returns ErrNotRecording when there is none.
func (r *Recorder) Stop(stream string) (Active, error) {
	r.mu.Lock()
	t := r.taps[stream]
	r.mu.Unlock()
	if t == nil {
		return Active{}, ErrNotRecording
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sess == nil {
		return Active{}, ErrNotRecording
	}
	a := t.activeLocked()
	t.sess.OnEnd(nil)
	t.sess = nil
	t.unpinLocked()
	return a, nil
}

// Recording returns the recording in progress of a stream.
func (r *Recorder) Recording(stream string) (Active, bool) {
	r.mu.Lock()
	t := r.taps[stream]
	r.mu.Unlock()
	if t == nil {
		return Active{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sess == nil {
		return Active{}, false
	}
	return t.activeLocked(), true
}

func (r *Recorder) emit(e Event) {
	if r.set.OnEvent != nil {
		r.set.OnEvent(e)
	}
}
