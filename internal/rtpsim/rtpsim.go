// Package rtpsim is a simulated RTP sender for tests: the RTP timestamps
// and RTCP Sender Reports of a publisher's tracks, with the clock faults
// seen in the field (RTP clocks skewed against the sender's wall clock, NTP
// times running at another rate or jumping, network jitter), on a fake
// clock so that hours run in seconds.
package rtpsim

import (
	"math"
	"time"
)

// Track is one simulated media track.
type Track struct {
	// ClockRate is the nominal RTP clock rate (90000, 48000).
	ClockRate uint32
	// Interval is the time between frames (33.3 ms, 20 ms).
	Interval time.Duration
	// Skew is how much faster the track's RTP clock runs than the sender's
	// wall clock (1e-4 is 100 ppm fast).
	Skew float64
	// Origin is the RTP timestamp of capture time 0 (random in RFC 3550;
	// pick one close to 2^32 to wrap during the run).
	Origin uint32
	// Delay is extra transit time of this track's packets (e.g. audio
	// behind video).
	Delay time.Duration
}

// Sender makes the events of a publish. The zero value of each setting is
// its default.
type Sender struct {
	Tracks []Track
	// SRInterval is the time between one track's Sender Reports. Default 5 s.
	SRInterval time.Duration
	// SRScale is the rate of the NTP time in Sender Reports against real
	// time: 2 and 0.5 are lying clocks. Default 1.
	SRScale float64
	// SRJumpAt and SRJump make the NTP time jump by SRJump from capture
	// time SRJumpAt on (0: no jump). SRJumpOnce limits it to one SR.
	SRJumpAt   time.Duration
	SRJump     time.Duration
	SRJumpOnce bool
	// NTPBase is the sender's wall clock at capture time 0.
	NTPBase time.Time
	// LocalBase is the receiver's clock at capture time 0; LocalSkew how
	// much faster the receiver's clock runs than the sender's (1e-4 is
	// 100 ppm).
	LocalBase time.Time
	LocalSkew float64
	// Transit is the network delay; Jitter the largest extra delay of a
	// packet, spread deterministically from Seed.
	Transit time.Duration
	Jitter  time.Duration
	Seed    uint64

	state []trackState
}

type trackState struct {
	frame, sr  int
	last       time.Time // arrival of the last frame (arrivals never go back)
	next       Event
	haveNext   bool
	nextSR     Event
	haveNextSR bool
}

// Event is one frame or Sender Report as the receiver sees it.
type Event struct {
	SR    bool
	Track int
	// Index counts the track's frames (or SRs).
	Index int
	// TS is the RTP timestamp (of the frame, or in the SR).
	TS uint32
	// NTP is the SR's 64-bit NTP timestamp.
	NTP uint64
	// Capture is when the frame was captured (SR: sent), since capture 0.
	Capture time.Duration
	// Arrival is the receiver's clock when it arrived.
	Arrival time.Time
}

func (s *Sender) init() {
	if s.state != nil {
		return
	}
	s.state = make([]trackState, len(s.Tracks))
	if s.SRInterval == 0 {
		s.SRInterval = 5 * time.Second
	}
	if s.SRScale == 0 {
		s.SRScale = 1
	}
}

// jitter is a deterministic pseudo-random delay in [0, Jitter).
func (s *Sender) jitter(track, sr, i int) time.Duration {
	if s.Jitter <= 0 {
		return 0
	}
	x := s.Seed ^ uint64(track)<<56 ^ uint64(sr)<<48 ^ uint64(i)
	x ^= x >> 33 // splitmix64 finaliser
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return time.Duration(x % uint64(s.Jitter))
}

// local is the receiver's clock at capture time c.
func (s *Sender) local(c time.Duration) time.Time {
	return s.LocalBase.Add(time.Duration(float64(c) * (1 + s.LocalSkew)))
}

// rtp is the track's RTP timestamp at capture time c.
func (tr *Track) rtp(c time.Duration) uint32 {
	ticks := math.Round(c.Seconds() * float64(tr.ClockRate) * (1 + tr.Skew))
	return tr.Origin + uint32(int64(ticks))
}

// ntp is the sender's NTP time at capture time c, with the configured lies.
func (s *Sender) ntp(c time.Duration) uint64 {
	t := s.NTPBase.Add(time.Duration(float64(c) * s.SRScale))
	if s.SRJump != 0 && c >= s.SRJumpAt && (!s.SRJumpOnce || c < s.SRJumpAt+s.SRInterval) {
		t = t.Add(s.SRJump)
	}
	return TimeToNTP(t)
}

// TimeToNTP converts t to a 64-bit NTP timestamp (RFC 5905 §6).
func TimeToNTP(t time.Time) uint64 {
	sec := uint64(t.Unix() + 2208988800)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

// Next returns the next event in arrival order.
func (s *Sender) Next() Event {
	s.init()
	best := -1
	bestSR := false
	var at time.Time
	for i := range s.Tracks {
		st := &s.state[i]
		tr := &s.Tracks[i]
		if !st.haveNext {
			c := time.Duration(st.frame) * tr.Interval
			a := s.local(c).Add(s.Transit + tr.Delay + s.jitter(i, 0, st.frame))
			if a.Before(st.last) {
				a = st.last
			}
			st.next = Event{Track: i, Index: st.frame, TS: tr.rtp(c), Capture: c, Arrival: a}
			st.haveNext = true
		}
		if !st.haveNextSR {
			// Tracks' SRs are spread over the interval, as senders do.
			c := time.Duration(st.sr)*s.SRInterval + time.Duration(i+1)*s.SRInterval/time.Duration(len(s.Tracks)+1)
			a := s.local(c).Add(s.Transit + s.jitter(i, 1, st.sr))
			st.nextSR = Event{SR: true, Track: i, Index: st.sr, TS: tr.rtp(c), NTP: s.ntp(c), Capture: c, Arrival: a}
			st.haveNextSR = true
		}
		if best < 0 || st.next.Arrival.Before(at) {
			best, bestSR, at = i, false, st.next.Arrival
		}
		if st.nextSR.Arrival.Before(at) {
			best, bestSR, at = i, true, st.nextSR.Arrival
		}
	}
	st := &s.state[best]
	if bestSR {
		st.haveNextSR = false
		st.sr++
		return st.nextSR
	}
	st.haveNext = false
	st.frame++
	st.last = st.next.Arrival
	return st.next
}
