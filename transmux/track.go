package transmux

// A track's side of the Transmuxer: samples pending, parts and segments closed.

import (
	"math"

	"github.com/whipcast/whipcast/media"
)

func durOf(d int64) uint32 {
	if d <= 0 {
		return 1 // DTS must increase; keep the sample rather than break the track
	}
	if d > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(d)
}

func sampleOf(f *media.Frame, dur uint32) sample {
	return sample{
		dts:  f.DTS,
		dur:  dur,
		cto:  int32(f.PTS - f.DTS),
		key:  f.Keyframe,
		data: f.Data,
		time: f.Time,
	}
}

// add appends a complete sample to the lead's current part.
func (ts *trackState) add(f *media.Frame, dur uint32) {
	ts.pend = append(ts.pend, sampleOf(f, dur))
	if len(ts.pend) == 1 {
		ts.pendTime = f.Time
	}
}

func (ts *trackState) enqueue(f *media.Frame, dur uint32, maxPending int) {
	ts.lastDur = dur
	if len(ts.queue)-ts.qhead >= maxPending {
		ts.qhead++ // drop the oldest: the lead has not moved for too long
	}
	if ts.qhead > 0 && len(ts.queue) == cap(ts.queue) {
		n := copy(ts.queue, ts.queue[ts.qhead:])
		ts.queue, ts.qhead = ts.queue[:n], 0
	}
	ts.queue = append(ts.queue, sampleOf(f, dur))
}

// durBefore is the duration of the held-back frame that f follows: the
// time to f, except across a discontinuity, where the time to f includes
// the publisher's absence and the last frame keeps the previous duration.
func (ts *trackState) durBefore(f *media.Frame) uint32 {
	if f.Discontinuity {
		return ts.guessDur()
	}
	return durOf(f.DTS - ts.last.DTS)
}

func (ts *trackState) guessDur() uint32 {
	if ts.lastDur > 0 {
		return ts.lastDur
	}
	if ts.video {
		return uint32(ts.rate / 30)
	}
	return uint32(ts.rate / 50)
}

func (ts *trackState) closePart(sink Sink) {
	if len(ts.pend) == 0 {
		return
	}
	ss := ts.pend
	ts.seq++
	bmdt := uint64(ss[0].dts - ts.origin)
	p := &Part{
		Init:                ts.init,
		MSN:                 ts.msn,
		Index:               ts.partIdx,
		BaseMediaDecodeTime: bmdt,
		Samples:             len(ss),
		Independent:         ss[0].key,
		Time:                ts.pendTime,
		Header:              fragmentHeader(ts.seq, bmdt, ss, ts.video),
		Payload:             make([][]byte, len(ss)),
	}
	p.Size = int64(len(p.Header))
	for i := range ss {
		p.Payload[i] = ss[i].data
		p.Duration += uint64(ss[i].dur)
		p.Size += int64(len(ss[i].data))
		ss[i].data = nil // do not pin frame memory from the scratch slice
	}
	if ts.seg == nil {
		p.Discontinuity = ts.nextDisc
		ts.seg = &Segment{
			Init:                ts.init,
			MSN:                 ts.msn,
			BaseMediaDecodeTime: bmdt,
			Time:                ts.pendTime,
			Discontinuity:       ts.nextDisc,
			Parts:               make([]*Part, 0, 16),
		}
		ts.nextDisc = false
	}
	ts.seg.Parts = append(ts.seg.Parts, p)
	ts.seg.Duration += p.Duration
	ts.seg.Size += p.Size
	ts.pend = ts.pend[:0]
	ts.partIdx++
	sink.OnPart(p)
}

// closeSegment hands over the current segment; a started track with no
// sample in it gets a gap segment from segStart to end (lead time) when
// hasEnd. short sets Segment.Short.
func (ts *trackState) closeSegment(sink Sink, leadRate, end int64, hasEnd, short bool) {
	seg := ts.seg
	ts.seg = nil
	if seg == nil {
		if !ts.started || !hasEnd {
			return
		}
		start := ts.segStart*ts.rate/leadRate - ts.origin
		stop := end*ts.rate/leadRate - ts.origin
		seg = &Segment{
			Init:                ts.init,
			MSN:                 ts.msn,
			BaseMediaDecodeTime: uint64(start),
			Duration:            uint64(max(stop-start, 0)),
			Discontinuity:       ts.nextDisc,
		}
		ts.nextDisc = false
	}
	seg.Short = short
	sink.OnSegment(seg)
}
