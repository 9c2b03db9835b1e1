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

// Timeline maps the RTP timestamps of a session's tracks onto one stream
// timeline, so that audio and video are in sync when their DTS are converted
// to seconds.
//
// RTP timestamps of different tracks have random origins (RFC 3550 §5.1); only
// RTCP Sender Reports tie each to the sender's wall clock (§6.4.1). Until a
// track's first SR, its frames are placed by arrival time (anchored on its
// first packet). The sender's clock is related to ours once, at the first SR
// of any track, so later SRs re-anchor a track without moving the others. DTS
// is counted from the first packet of the session and kept strictly
// increasing per track (a re-anchoring that would go back is clamped).
//
// A Timeline is safe for concurrent use: each track's reader goroutine calls
// Frame, RTCP goroutines call SenderReport.
type Timeline struct {
	mu         sync.Mutex
	origin     time.Time // local time of DTS 0
	haveOrigin bool
	offset     time.Duration // local clock minus sender NTP clock
	haveOffset bool
	tracks     []timelineTrack
}

type timelineTrack struct {
	clock   int64
	haveTS  bool
	lastExt int64 // highest unwrapped RTP timestamp seen

	haveAnchor bool
	anchorExt  int64
	anchorWall time.Time // local arrival of anchorExt

	haveSR bool
	srExt  int64
	srNTP  time.Time // sender clock

	haveDTS bool
	lastDTS int64
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
	ext := tr.lastExt + int64(int32(ts-uint32(tr.lastExt)))
	if ext > tr.lastExt {
		tr.lastExt = ext
	}
	return ext
}

func (tr *timelineTrack) ticksToDuration(ticks int64) time.Duration {
	return time.Duration(ticks * int64(time.Second) / tr.clock)
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
	var local time.Time
	if tr.haveSR && t.haveOffset {
		wall = tr.srNTP.Add(tr.ticksToDuration(ext - tr.srExt))
		local = wall.Add(t.offset)
	} else {
		local = tr.anchorWall.Add(tr.ticksToDuration(ext - tr.anchorExt))
		wall = local
	}
	d := local.Sub(t.origin)
	dts = int64(d) / 1000 * tr.clock / 1e6 // µs first: no overflow for days
	if tr.haveDTS && dts <= tr.lastDTS {
		dts = tr.lastDTS + 1
	} else if !tr.haveDTS && dts < 0 {
		dts = 0
	}
	tr.haveDTS = true
	tr.lastDTS = dts
	return dts, wall
}

// SenderReport feeds an RTCP SR of the track: the sender's NTP time ntp
// corresponds to RTP timestamp ts. arrival is when the SR was received.
func (t *Timeline) SenderReport(track int, ntp uint64, ts uint32, arrival time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if track < 0 || track >= len(t.tracks) || ntp == 0 {
		return
	}
	tr := &t.tracks[track]
	ext := tr.unwrap(ts)
	sr := ntpToTime(ntp)
	if !t.haveOffset {
		// Relate the sender's clock to ours where this track already is, so
		// the track does not jump when it switches to SR mapping.
		local := arrival
		if tr.haveAnchor {
			local = tr.anchorWall.Add(tr.ticksToDuration(ext - tr.anchorExt))
		}
		t.offset = local.Sub(sr)
		t.haveOffset = true
	}
	tr.haveSR = true
	tr.srExt = ext
	tr.srNTP = sr
}
