package bench

import (
	"slices"
	"sync"
	"time"
)

// gapLimit is the jump between two frames of one track that counts as a
// timestamp gap: more than any frame interval a live stream has (33 ms at
// 30 fps, 21 ms for AAC), less than a stall anyone would notice.
const gapLimit = 250 // ms

// track indexes the per-track arrays of a sinkStream.
const (
	trackVideo = iota
	trackAudio
)

// sinkStream is one RTMP publish the sink received: its name, when it
// began, and what its audio and video messages carried. The connection's
// goroutine adds to it; the run reads it at the end (mu).
type sinkStream struct {
	mu sync.Mutex
	// app and name are the connect command's app and the publish name
	// (rtmp://host/app/name).
	app, name string
	publish   time.Time // the publish command arrived
	tracks    [2]sinkTrack
	// The first frame of either track, which the lags are measured from.
	haveFirst bool
	firstWall time.Time
	firstTS   uint32
	lags      []time.Duration // per frame: arrival − its timestamp, from the first frame
	ended     time.Time
}

// sinkTrack is what one track of a publish carried.
type sinkTrack struct {
	codec       string
	frames      int
	bytes       int64
	headers     int
	first, last time.Time // arrival of the first and last frame
	firstTS     uint32
	lastTS      uint32
	gaps        int // frames more than gapLimit after the one before
	nonMono     int // frames not later than the one before
}

// add records one message: track, its RTMP timestamp (ms), its arrival,
// its parsed header and its size.
func (s *sinkStream) add(track int, ts uint32, at time.Time, t tagInfo, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tr := &s.tracks[track]
	if tr.codec == "" {
		tr.codec = t.codec
	}
	tr.bytes += int64(size)
	if t.header {
		tr.headers++
		return
	}
	if tr.frames == 0 {
		tr.first, tr.firstTS = at, ts
	} else {
		// RTMP timestamps are 32-bit ms; a difference read as signed
		// survives a wrap after 49 days.
		d := int32(ts - tr.lastTS)
		if d <= 0 {
			tr.nonMono++
		} else if d > gapLimit {
			tr.gaps++
		}
	}
	tr.frames++
	tr.last, tr.lastTS = at, ts
	if !s.haveFirst {
		s.haveFirst, s.firstWall, s.firstTS = true, at, ts
	}
	media := time.Duration(int32(ts-s.firstTS)) * time.Millisecond
	s.lags = append(s.lags, at.Sub(s.firstWall)-media)
}

// sinkResult is a sinkStream's figures for one publisher.
type sinkResult struct {
	publish          time.Time
	firstVideo       time.Time // zero when no video frame came
	firstAudio       time.Time
	videoCodec       string
	audioCodec       string
	videoFrames      int
	audioFrames      int
	bytes            int64
	seconds          float64 // first to last frame of either track
	gaps, nonMono    int
	avStart          time.Duration // first audio timestamp − first video timestamp
	haveAV           bool
	lags             []time.Duration // ≥ 0: from the least lag of the stream
	startLag         time.Duration   // the first frame's lag
	haveStart        bool
	drift            time.Duration
	haveDrift        bool
	videoFPS, audioS float64 // frames per second of each track
}

// result reads the figures.
func (s *sinkStream) result() sinkResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, a := &s.tracks[trackVideo], &s.tracks[trackAudio]
	r := sinkResult{
		publish: s.publish, videoCodec: v.codec, audioCodec: a.codec,
		videoFrames: v.frames, audioFrames: a.frames, bytes: v.bytes + a.bytes,
		gaps: v.gaps + a.gaps, nonMono: v.nonMono + a.nonMono, lags: slices.Clone(s.lags),
	}
	if v.frames > 0 {
		r.firstVideo = v.first
	}
	if a.frames > 0 {
		r.firstAudio = a.first
	}
	if v.frames > 0 && a.frames > 0 {
		r.avStart, r.haveAV = time.Duration(int32(a.firstTS-v.firstTS))*time.Millisecond, true
	}
	var from, to time.Time
	for _, t := range []*sinkTrack{v, a} {
		if t.frames == 0 {
			continue
		}
		if from.IsZero() || t.first.Before(from) {
			from = t.first
		}
		if t.last.After(to) {
			to = t.last
		}
	}
	r.seconds = to.Sub(from).Seconds()
	r.videoFPS, r.audioS = rate(v), rate(a)
	r.drift, r.haveDrift = drift(s.lags)
	// From the frame that came soonest after its timestamp: every lag is
	// then ≥ 0, and the first frame's is how long the start held it
	// (a pusher waiting for a keyframe or for audio sends a burst).
	if len(r.lags) > 0 {
		least := slices.Min(r.lags)
		for i := range r.lags {
			r.lags[i] -= least
		}
		r.startLag, r.haveStart = r.lags[0], true
	}
	return r
}

// rate is a track's frames per second between its first and last frame.
func rate(t *sinkTrack) float64 {
	d := t.last.Sub(t.first).Seconds()
	if t.frames < 2 || d <= 0 {
		return 0
	}
	return float64(t.frames-1) / d
}

// drift is how much later frames arrive, against their timestamps, at the
// end of a publish than at its start: the median lag of the last quarter
// of the frames minus that of the first quarter. Positive means the
// stream falls behind the clock (a queue grows somewhere), negative that
// its timestamps run slower than the clock. It needs 8 frames.
func drift(lags []time.Duration) (time.Duration, bool) {
	if len(lags) < 8 {
		return 0, false
	}
	q := len(lags) / 4
	head := slices.Clone(lags[:q])
	tail := slices.Clone(lags[len(lags)-q:])
	slices.Sort(head)
	slices.Sort(tail)
	return percentile(tail, 50) - percentile(head, 50), true
}
