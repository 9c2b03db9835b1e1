// Package transmux turns a stream's Frames into CMAF (ISO/IEC 23000-19): one
// init segment per track and fragments (moof + mdat) cut into parts and
// segments, produced once per stream and shared, immutable, by every consumer
// (HLS, DASH, recorder, CDN publisher).
//
// Cutting follows one leading track (the first video track, else the first
// track): segments start at its keyframes once SegmentTarget has passed and
// parts close before they would exceed PartTarget. Every other track is cut at
// the same stream times, so equal MSNs cover equal time ranges on all tracks.
//
// The first segment of a video stream is the exception: it is cut at the
// first keyframe once Settings.FirstSegment has been muxed, and the
// transmuxer asks the publisher for that keyframe (firstseg.go).
package transmux

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/whipcast/whipcast/media"
)

// Transmuxer is the CMAF muxer of one stream. It is used by one goroutine:
// either Run, or a caller of WriteFrame and End.
type Transmuxer struct {
	set  Settings
	sink Sink

	byID   []*trackState // indexed by media.Track.ID; nil for skipped tracks
	all    []*trackState
	lead   *trackState
	follow []*trackState

	cuts      []cut // lead cuts not yet applied by every follower
	started   bool
	leadStart int64 // lead DTS of the first sample
	leadTime  int64 // lead DTS up to which cuts are decided
	origin    float64
	segTarget int64 // shortest segment cut at a keyframe, in lead timescale
	partTgt   int64
	first     firstSegment
	ended     bool
	resyncs   int
	// discAt is set by a lead frame with media.Frame.Discontinuity that could
	// not cut (not a keyframe, or before the first segment started): the
	// next segment the lead starts is marked as a discontinuity.
	discAt bool
}

// cut is a boundary decided on the lead track, in lead timescale.
type cut struct {
	at      int64
	segment bool
	disc    bool
	short   bool // the first segment, cut early (Segment.Short)
}

type trackState struct {
	t     *media.Track
	video bool
	rate  int64
	init  *Init
	cfg   *media.Config

	last    *media.Frame // held back until the next frame gives its duration
	lastDur uint32
	origin  int64 // subtracted from DTS to get tfdt

	// following tracks only: samples waiting for the lead's cut decisions.
	queue  []sample
	qhead  int
	cutIdx int

	started   bool
	msn       uint64
	partIdx   int
	seq       uint32
	pend      []sample
	pendTime  time.Time // wall time of pend[0]
	seg       *Segment
	segStart  int64 // lead time of the current segment's start
	partStart int64 // lead time of the current part's start (lead only)
	nextDisc  bool
}

// New makes a Transmuxer for tracks (a Stream's Tracks) writing to sink.
// Tracks with a codec CMAF cannot carry here are skipped; ErrNoTracks if none
// is left.
func New(s Settings, tracks []*media.Track, sink Sink) (*Transmuxer, error) {
	m := &Transmuxer{set: s.withDefaults(), sink: sink}
	for _, t := range tracks {
		if t.ID >= len(m.byID) {
			m.byID = append(m.byID, make([]*trackState, t.ID+1-len(m.byID))...)
		}
		if !supported(t.Codec) {
			continue
		}
		ts := &trackState{t: t, video: t.Kind == media.KindVideo, rate: int64(timescale(t))}
		m.byID[t.ID] = ts
		m.all = append(m.all, ts)
		if m.lead == nil && ts.video {
			m.lead = ts
		}
	}
	if len(m.all) == 0 {
		return nil, ErrNoTracks
	}
	if m.lead == nil {
		m.lead = m.all[0]
	}
	for _, ts := range m.all {
		if ts != m.lead {
			m.follow = append(m.follow, ts)
		}
	}
	r := m.lead.rate
	// A segment ends at the first keyframe that comes at most a quarter of
	// the target (500 ms at most) before it. Ingest asks publishers for a
	// keyframe a little ahead of the target (browsers send them only when
	// asked), and one that lands just short of the target must cut the
	// segment, not leave it a whole GOP longer.
	// Audio-only streams, cut at any frame, keep the whole target.
	cut := m.set.SegmentTarget
	if m.lead.video {
		cut -= min(cut/4, 500*time.Millisecond)
	}
	m.segTarget = int64(cut) * r / int64(time.Second)
	m.partTgt = int64(m.set.PartTarget) * r / int64(time.Second)
	m.first = newFirstSegment(m.set.FirstSegment, m.lead.video, r, m.segTarget)
	return m, nil
}

// Run reads r until the stream ends, ctx is done or the reader fails, then
// flushes what is pending and calls Sink.OnEnd. It returns nil at the normal
// end of the stream. Frames with a configuration that cannot be muxed are
// dropped and do not stop Run.
//
// Give it a reader of media.Stream.SubscribeSkipping: where the reader fell
// behind (media.ErrReaderSkipped) the output resumes at the next keyframe
// with a new segment marked as a discontinuity, MSNs continuing. A reader
// of Subscribe that falls behind ends Run with media.ErrReaderTooSlow. r
// stays the caller's to close.
func (m *Transmuxer) Run(ctx context.Context, r *media.Reader) error {
	if m.first.request == nil {
		m.first.request = r.Stream().RequestKeyframe
	}
	for {
		f, err := r.Read(ctx)
		if err != nil {
			if errors.Is(err, media.ErrReaderSkipped) {
				m.resyncs++
				m.resync()
				continue
			}
			if errors.Is(err, media.ErrStreamEnded) {
				err = nil
			}
			m.End(err)
			return err
		}
		_ = m.WriteFrame(f) // only ErrBadConfig: the frame is dropped
	}
}

// Resyncs returns how many times Run had to resubscribe after falling behind.
// It is for the goroutine running the Transmuxer (or after Run returned).
func (m *Transmuxer) Resyncs() int { return m.resyncs }

// resync flushes every track and waits for a new keyframe on the lead, as
// after a gap in the input: MSNs go on, the next segment is a discontinuity.
func (m *Transmuxer) resync() {
	if !m.started {
		return
	}
	m.flushTracks(true)
	var next uint64
	for _, ts := range m.all {
		next = max(next, ts.msn)
	}
	for _, ts := range m.all {
		ts.msn, ts.partIdx, ts.nextDisc = next, 0, true
		ts.last, ts.lastDur = nil, 0
		ts.queue, ts.qhead, ts.cutIdx = ts.queue[:0], 0, 0
	}
	m.cuts = m.cuts[:0]
	m.started = false
}

// WriteFrame adds one frame. Frames of one track come in decode order. It
// returns an error wrapping ErrBadConfig when the frame's configuration
// cannot be muxed; the frame is then dropped.
func (m *Transmuxer) WriteFrame(f *media.Frame) error {
	if m.ended || f.Track == nil || f.Track.ID < 0 || f.Track.ID >= len(m.byID) {
		return nil
	}
	ts := m.byID[f.Track.ID]
	if ts == nil || ts.t != f.Track {
		return nil
	}
	if ts == m.lead {
		return m.writeLead(ts, f)
	}
	if ts.last != nil {
		ts.enqueue(ts.last, ts.durBefore(f), m.set.MaxPending)
	}
	ts.last = f
	if f.Config != nil && ts.cfg == nil {
		ts.cfg = f.Config
	}
	return m.drain(ts)
}

func (m *Transmuxer) writeLead(ts *trackState, f *media.Frame) error {
	if f.Discontinuity {
		m.discAt = true
	}
	if !m.started {
		if ts.video && (!f.Keyframe || f.Config == nil) {
			return nil // wait for a decodable start
		}
		in := ts.init
		if in == nil || f.Config != ts.cfg {
			version := 0
			if in != nil {
				version = in.Version + 1
			}
			var err error
			if in, err = newInit(ts.t, f.Config, version); err != nil {
				return err
			}
		}
		if ts.init == nil { // the very first start fixes the time origin
			m.origin = min(0, float64(f.DTS)/float64(ts.rate))
			for _, o := range m.all {
				o.origin = int64(math.Floor(m.origin * float64(o.rate)))
			}
		}
		if m.discAt && ts.init != nil {
			// A resumed publish whose first frame arrived while we waited
			// for a keyframe (after a resync): the segment it starts is a
			// discontinuity, as after a resync.
			for _, o := range m.all {
				o.nextDisc = true
			}
		}
		m.discAt = false
		m.started = true
		m.leadStart, m.leadTime = f.DTS, f.DTS
		for _, o := range m.all {
			o.segStart = f.DTS
		}
		ts.cfg, ts.started = f.Config, true
		ts.partStart = f.DTS
		if in != ts.init {
			ts.init = in
			m.sink.OnInit(in)
		}
		ts.last = f
		return m.drainAll()
	}
	dur := ts.durBefore(f)
	ts.add(ts.last, dur)
	ts.last, ts.lastDur = f, dur

	var err error
	newCfg := ts.video && f.Keyframe && f.Config != nil && f.Config != ts.cfg
	var in *Init
	if newCfg {
		in, err = newInit(ts.t, f.Config, ts.init.Version+1)
		if err != nil {
			newCfg = false // keep the old init; the error is reported
		}
	}
	// A discontinuity (the publisher reconnected, media.Frame.Discontinuity)
	// cuts at its keyframe whatever the segment's length, as an init change
	// does: what follows is another coded sequence, and HLS/DASH must mark
	// it even when the codec configuration is the same.
	disc := newCfg || m.discAt && (f.Keyframe || !ts.video)
	segLen := f.DTS - ts.segStart
	switch {
	case disc || f.Keyframe && segLen >= m.first.cutAt(m.segTarget):
		m.cut(cut{at: f.DTS, segment: true, disc: disc, short: m.first.open && segLen < m.segTarget})
		m.first.open = false
		m.discAt = false
	case f.DTS-ts.partStart+int64(dur) > m.partTgt:
		m.cut(cut{at: f.DTS})
	}
	m.first.maybeAsk(segLen)
	if newCfg {
		ts.init, ts.cfg = in, f.Config
		m.sink.OnInit(in)
	}
	m.leadTime = f.DTS
	if derr := m.drainAll(); derr != nil && err == nil {
		err = derr
	}
	return err
}

// cut applies c to the lead now and queues it for the followers.
func (m *Transmuxer) cut(c cut) {
	m.apply(m.lead, c)
	m.lead.partStart = c.at
	if len(m.follow) > 0 {
		m.cuts = append(m.cuts, c)
	}
}

// maxCuts bounds the lead cuts kept for a follower that has gone quiet (an
// audio track that stopped sending): beyond it the oldest are applied
// anyway, which closes that track's segments as gaps.
const maxCuts = 64

func (m *Transmuxer) drainAll() error {
	var err error
	for _, ts := range m.follow {
		if !ts.started && ts.last == nil && ts.qhead == len(ts.queue) {
			// Nothing sent yet: only follow the numbering.
			for ; ts.cutIdx < len(m.cuts); ts.cutIdx++ {
				m.apply(ts, m.cuts[ts.cutIdx])
			}
			continue
		}
		if e := m.drain(ts); e != nil {
			err = e
		}
		for ; len(m.cuts)-ts.cutIdx > maxCuts; ts.cutIdx++ {
			m.apply(ts, m.cuts[ts.cutIdx])
		}
	}
	if len(m.cuts) == 0 {
		return err
	}
	low := len(m.cuts)
	for _, ts := range m.follow {
		low = min(low, ts.cutIdx)
	}
	if low > 0 {
		n := copy(m.cuts, m.cuts[low:])
		m.cuts = m.cuts[:n]
		for _, ts := range m.follow {
			ts.cutIdx -= low
		}
	}
	return err
}

// drain places a follower's queued samples up to the decided lead time.
func (m *Transmuxer) drain(ts *trackState) error {
	if !m.started {
		return nil
	}
	for ts.qhead < len(ts.queue) {
		s := &ts.queue[ts.qhead]
		at := s.dts * m.lead.rate / ts.rate
		if at > m.leadTime {
			break
		}
		ts.qhead++
		if at < m.leadStart {
			continue // before the stream's first segment
		}
		for ts.cutIdx < len(m.cuts) && at >= m.cuts[ts.cutIdx].at {
			m.apply(ts, m.cuts[ts.cutIdx])
			ts.cutIdx++
		}
		if !ts.started {
			in, err := newInit(ts.t, ts.cfg, 0)
			if err != nil {
				return err
			}
			ts.init, ts.started = in, true
			m.sink.OnInit(in)
		}
		ts.pend = append(ts.pend, *s)
		if len(ts.pend) == 1 {
			ts.pendTime = s.time
		}
	}
	if ts.qhead == len(ts.queue) {
		ts.queue, ts.qhead = ts.queue[:0], 0
	}
	return nil
}

// apply closes the track's current part, and segment for a segment cut.
func (m *Transmuxer) apply(ts *trackState, c cut) {
	ts.closePart(m.sink)
	if !c.segment {
		return
	}
	ts.closeSegment(m.sink, m.lead.rate, c.at, true, c.short)
	ts.msn++
	ts.partIdx = 0
	ts.segStart = c.at
	ts.nextDisc = ts.nextDisc || c.disc
}

// End flushes every pending sample into a last part and segment and calls
// Sink.OnEnd(err). Later calls and frames are ignored.
func (m *Transmuxer) End(err error) {
	if m.ended {
		return
	}
	if m.started {
		m.flushTracks(false)
	}
	m.ended = true
	m.sink.OnEnd(err)
}

// flushTracks completes the held-back frames with a guessed duration, places
// every queued sample and closes every track's part and segment. With gaps,
// a started track without samples in the last segment gets a gap segment so
// that MSNs stay consecutive on every track.
func (m *Transmuxer) flushTracks(gaps bool) {
	l := m.lead
	if l.last != nil {
		l.add(l.last, l.guessDur())
		l.last = nil
	}
	end := l.segStart
	if n := len(l.pend); n > 0 {
		end = l.pend[n-1].dts + int64(l.pend[n-1].dur)
	} else if l.seg != nil {
		p := l.seg.Parts[len(l.seg.Parts)-1]
		end = int64(p.BaseMediaDecodeTime+p.Duration) + l.origin
	}
	m.leadTime = math.MaxInt64
	for _, ts := range m.follow {
		if ts.last != nil {
			ts.enqueue(ts.last, ts.guessDur(), math.MaxInt)
			ts.last = nil
		}
		_ = m.drain(ts)
	}
	for _, ts := range m.all {
		ts.closePart(m.sink)
		if ts.seg != nil || gaps && ts.started && end > ts.segStart {
			ts.closeSegment(m.sink, m.lead.rate, end, true, false)
			ts.msn++
		}
	}
}
