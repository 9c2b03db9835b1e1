package ingest

import (
	"sync"
	"time"
)

// ntpEpochOffset is the number of seconds from the NTP epoch (1900) to the
// Unix epoch (1970), RFC 5905 §6.
const ntpEpochOffset = 2208988800

// ntpToTime converts a 64-bit NTP timestamp (RTCP SR, RFC 3550 §6.4.1).
func ntpToTime(ntp uint64) time.Time {
	sec := int64(ntp>>32) - ntpEpochOffset
	nsec := int64((ntp & 0xffffffff) * 1e9 >> 32)
	return time.Unix(sec, nsec)
}

// timeToNTP is the inverse of ntpToTime (used by tests and fuzzing).
func timeToNTP(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

// The bounds a Sender Report must meet to be believed. Publishers in the
// field send SRs that lie: GStreamer 1.22 (Meetecho simple-whip-client,
// Debian 12) reports NTP time running at half its RTP clock. The bounds let
// through what honest clocks do (±100 ppm skew, network jitter, an SR every
// 1–5 s) and reject 2× and 0.5× clocks and jumps.
const (
	// srRateTolerance is how far the NTP time between two SRs may differ
	// from their RTP time at the nominal clock rate, as a fraction of it,
	// on top of srTickTolerance: 0.5 % is 50 times the ±100 ppm skew of
	// real crystals.
	srRateTolerance = 0.005
	// srTickTolerance absorbs rounding in the sender's RTP/NTP pairing.
	srTickTolerance = 5 * time.Millisecond
	// srJitterTolerance is how far the arrival of two SRs may differ from
	// their NTP distance (network jitter, sender scheduling).
	srJitterTolerance = 150 * time.Millisecond
	// srDriftTolerance is how fast a track's SR time may drift from their
	// arrival over the publish, on top of srJitterTolerance: the sender's
	// and our crystals (±100 ppm each) and an NTP daemon's slew (≤ 500 ppm)
	// stay inside; a sender clock 0.4 % fast, which each pair of SRs lets
	// through, does not.
	srDriftTolerance = 0.0005
	// maxSlew is the largest correction applied to a track's timeline per
	// second of its media (1 ms per 100 ms): consecutive DTS stay within
	// 1 % of the RTP distance, so no output ever sees time squeezed.
	maxSlew = 0.01
	// maxStep is the largest forward step a track takes when it is first
	// aligned to the others; a bigger misalignment is slewed.
	maxStep = time.Second
)

// Timeline maps the RTP timestamps of a session's tracks onto one stream
// timeline, so that audio and video are in sync when their DTS are converted
// to seconds.
//
// Each track's timeline is driven by its own RTP clock at its nominal rate,
// anchored on the arrival of its first packet: that alone is robust (it is
// what a publisher without SRs gets), but the tracks' RTP clocks have random
// origins and may each be off by ±100 ppm (RFC 3550 §5.1), which over hours
// is seconds of A/V drift. RTCP Sender Reports tie every track's RTP clock
// to the sender's one NTP clock (§6.4.1), so they are used for two things
// only: to align the tracks to each other, and to follow each RTP clock's
// skew. An SR is believed only when it agrees with the previous believed SR
// of its track (NTP distance ≈ RTP distance at the nominal rate ≈ arrival
// distance, see srRateTolerance) and keeps pace with arrival over the
// publish (srDriftTolerance); the first needs a second one that confirms
// it. A sender whose clock steps (a jump that later SRs keep) is followed
// from where its RTP clock already was. Corrections are slewed (maxSlew), a
// forward step is taken only when a track is first aligned, and DTS is
// strictly increasing per track: time never goes back and never squeezes.
//
// The wall-clock time of a frame (media.Frame.Time, HLS PROGRAM-DATE-TIME)
// is the local time its DTS stands for: our clock, not the sender's, so a
// lying sender cannot move it backwards either.
//
// A Timeline is safe for concurrent use: each track's reader goroutine calls
// Frame, RTCP goroutines call SenderReport.
type Timeline struct {
	mu         sync.Mutex
	origin     time.Time // local time of DTS 0
	haveOrigin bool
	offset     time.Duration // local clock minus the sender's NTP clock
	haveOffset bool
	tracks     []timelineTrack

	accepted, rejected uint64
}

// srPoint is one Sender Report: RTP time ext was NTP time ntp at the sender,
// and the report arrived at arrival.
type srPoint struct {
	ext     int64
	ntp     time.Time
	arrival time.Time
}

type timelineTrack struct {
	clock   int64
	haveTS  bool
	lastExt int64 // highest unwrapped RTP timestamp seen

	haveAnchor bool
	anchorExt  int64
	anchorWall time.Time     // local arrival of anchorExt
	adj        time.Duration // correction added to the RTP mapping (slewed)

	aligned  bool    // ref is believed and the track follows it
	stepOK   bool    // the next frame may step forward to its target
	ref      srPoint // the last believed SR
	haveCand bool
	cand     srPoint       // an SR waiting for one that confirms it
	shift    time.Duration // added to this track's NTP times after a clock step
	// lead0 is arrival minus NTP time of the first believed SR, at first0:
	// later SRs must stay near it (srDriftTolerance).
	lead0  time.Duration
	first0 time.Time

	haveDTS   bool
	lastDTS   int64
	lastFrame int64 // ext of the last frame placed

	accepted, rejected uint64 // this track's SRs (SRStats)
}

// NewTimeline makes a Timeline for tracks with the given RTP clock rates,
// indexed like the stream's tracks.
func NewTimeline(clockRates ...uint32) *Timeline {
	t := &Timeline{tracks: make([]timelineTrack, len(clockRates))}
	for i, c := range clockRates {
		if c == 0 {
			c = 90000
		}
		t.tracks[i].clock = int64(c)
	}
	return t
}

// SetOrigin places DTS 0 at local time origin instead of at the first
// frame's arrival. Ingest calls it, before the first frame, for a publisher
// that resumed a held stream (media.Stream.ResumeOrigin), so the stream's
// timeline goes on after its last frame instead of starting again at 0.
func (t *Timeline) SetOrigin(origin time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.origin, t.haveOrigin = origin, true
}

// unwrap extends a 32-bit RTP timestamp to 64 bits relative to the highest
// one seen, so both wraps and reordered (older) timestamps come out right.
func (tr *timelineTrack) unwrap(ts uint32) int64 {
	if !tr.haveTS {
		tr.haveTS = true
		tr.lastExt = int64(ts)
		return tr.lastExt
	}
	ext := tr.near(ts)
	if ext > tr.lastExt {
		tr.lastExt = ext
	}
	return ext
}

// near unwraps ts next to the highest timestamp seen without moving it.
func (tr *timelineTrack) near(ts uint32) int64 {
	return tr.lastExt + int64(int32(ts-uint32(tr.lastExt)))
}

func (tr *timelineTrack) ticksToDuration(ticks int64) time.Duration {
	// Split so that days of 90 kHz ticks do not overflow int64 nanoseconds.
	return time.Duration(ticks/tr.clock)*time.Second + time.Duration(ticks%tr.clock*int64(time.Second)/tr.clock)
}

func (tr *timelineTrack) durationToTicks(d time.Duration) int64 {
	return int64(d/time.Second)*tr.clock + int64(d%time.Second)*tr.clock/int64(time.Second)
}

// mapped is where ext lies on the local clock by the track's RTP mapping.
func (tr *timelineTrack) mapped(ext int64) time.Time {
	return tr.anchorWall.Add(tr.ticksToDuration(ext-tr.anchorExt) + tr.adj)
}

// target is where ext lies on the local clock by the track's believed SR.
func (t *Timeline) target(tr *timelineTrack, ext int64) time.Time {
	return tr.ref.ntp.Add(tr.ticksToDuration(ext-tr.ref.ext) + t.offset)
}

// Frame returns the DTS (in the track's clock rate) and the wall-clock time of
// a frame with RTP timestamp ts that completed at arrival.
func (t *Timeline) Frame(track int, ts uint32, arrival time.Time) (dts int64, wall time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if track < 0 || track >= len(t.tracks) {
		return 0, arrival
	}
	tr := &t.tracks[track]
	ext := tr.unwrap(ts)
	if !t.haveOrigin {
		t.haveOrigin = true
		t.origin = arrival
	}
	if !tr.haveAnchor {
		tr.haveAnchor = true
		tr.anchorExt = ext
		tr.anchorWall = arrival
	}
	if tr.aligned && t.haveOffset {
		err := t.target(tr, ext).Sub(tr.mapped(ext))
		switch {
		case !tr.haveDTS || tr.stepOK && err > 0 && err <= maxStep:
			tr.adj += err
		case ext > tr.lastFrame:
			limit := time.Duration(float64(tr.ticksToDuration(ext-tr.lastFrame)) * maxSlew)
			tr.adj += min(max(err, -limit), limit)
		}
		tr.stepOK = false
	}
	first := !tr.haveDTS
	dts = tr.durationToTicks(tr.mapped(ext).Sub(t.origin))
	if !first && dts <= tr.lastDTS {
		dts = tr.lastDTS + 1
	} else if first && dts < 0 {
		dts = 0
	}
	tr.haveDTS = true
	tr.lastDTS = dts
	if first || ext > tr.lastFrame {
		tr.lastFrame = ext
	}
	return dts, t.origin.Add(tr.ticksToDuration(dts))
}

// consistent reports whether SR b agrees with the earlier SR a of the same
// track: NTP distance, RTP distance at the nominal rate and arrival distance
// within the bounds above.
func (tr *timelineTrack) consistent(a, b srPoint) bool {
	dRTP := tr.ticksToDuration(b.ext - a.ext)
	dNTP := b.ntp.Sub(a.ntp)
	dArr := b.arrival.Sub(a.arrival)
	if dRTP <= 0 || dNTP <= 0 {
		return false
	}
	if abs(dNTP-dRTP) > srTickTolerance+time.Duration(float64(dRTP)*srRateTolerance) {
		return false
	}
	return abs(dNTP-dArr) <= srJitterTolerance+time.Duration(float64(max(dArr, 0))*srRateTolerance)
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// onPace reports whether SR p's NTP time has kept pace with its arrival
// since the track's first believed SR.
func (tr *timelineTrack) onPace(p srPoint) bool {
	drift := p.arrival.Sub(p.ntp) - tr.lead0
	return abs(drift) <= srJitterTolerance+time.Duration(float64(p.arrival.Sub(tr.first0))*srDriftTolerance)
}

// SenderReport feeds an RTCP SR of the track: the sender's NTP time ntp
// corresponds to RTP timestamp ts. arrival is when the SR was received. It
// reports whether the SR was believed (see Timeline).
func (t *Timeline) SenderReport(track int, ntp uint64, ts uint32, arrival time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if track < 0 || track >= len(t.tracks) || ntp == 0 {
		return false
	}
	tr := &t.tracks[track]
	if !tr.haveTS {
		return false // nothing to relate it to yet
	}
	// An SR's RTP time never moves the unwrapping: it may be garbage.
	p := srPoint{ext: tr.near(ts), ntp: ntpToTime(ntp).Add(tr.shift), arrival: arrival}
	switch {
	case tr.aligned && tr.consistent(tr.ref, p) && tr.onPace(p):
		tr.ref, tr.haveCand = p, false
	case tr.aligned && tr.haveCand && tr.consistent(tr.cand, p):
		// The sender's clock stepped and stays stepped, or runs off pace:
		// carry on from where its RTP clock puts this SR on the old clock.
		// lead0 stays: a clock that keeps running off pace keeps failing
		// onPace, and is followed by its RTP clock alone.
		want := tr.ref.ntp.Add(tr.ticksToDuration(p.ext - tr.ref.ext))
		tr.shift += want.Sub(p.ntp)
		p.ntp = want
		tr.ref, tr.haveCand = p, false
	case !tr.aligned && tr.haveCand && tr.consistent(tr.cand, p):
		tr.ref, tr.haveCand = p, false
		tr.lead0, tr.first0 = p.arrival.Sub(p.ntp), p.arrival
		t.align(tr)
	default:
		if tr.aligned || tr.haveCand {
			t.rejected++
			tr.rejected++
		}
		tr.cand, tr.haveCand = p, true
		return false
	}
	t.accepted++
	tr.accepted++
	return true
}

// align starts following a track's first believed SR. The first track
// aligned fixes the relation of the sender's clock to ours where that track
// already is; a track that would have to go back to meet the others moves
// them forward instead.
func (t *Timeline) align(tr *timelineTrack) {
	tr.aligned = true
	if !tr.haveAnchor {
		if !t.haveOffset {
			t.offset = tr.ref.arrival.Sub(tr.ref.ntp)
			t.haveOffset = true
		}
		return
	}
	cur := tr.mapped(tr.ref.ext)
	if !t.haveOffset {
		t.offset = cur.Sub(tr.ref.ntp)
		t.haveOffset = true
		return
	}
	err := t.target(tr, tr.ref.ext).Sub(cur)
	if err < 0 && tr.haveDTS {
		t.offset -= err
		for i := range t.tracks {
			if o := &t.tracks[i]; o != tr && o.aligned {
				o.stepOK = true
			}
		}
		return
	}
	tr.stepOK = true
}

// SRStats returns how many Sender Reports were believed and how many were
// rejected as disagreeing with the ones before.
func (t *Timeline) SRStats() (accepted, rejected uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.accepted, t.rejected
}

// TrackSRStats is SRStats for one track (0 and 0 for an unknown one).
func (t *Timeline) TrackSRStats(track int) (accepted, rejected uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if track < 0 || track >= len(t.tracks) {
		return 0, 0
	}
	return t.tracks[track].accepted, t.tracks[track].rejected
}
