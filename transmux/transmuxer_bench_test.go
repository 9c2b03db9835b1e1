package transmux

import (
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

type nopSink struct{ parts, bytes int64 }

func (n *nopSink) OnInit(*Init)       {}
func (n *nopSink) OnPart(p *Part)     { n.parts++; n.bytes += p.Size }
func (n *nopSink) OnSegment(*Segment) {}
func (n *nopSink) OnEnd(error)        {}

// loopFrames feeds the fixture again and again with increasing timestamps.
// Two copies alternate so the frame held back by the transmuxer is never
// rewritten under it.
type loopFrames struct {
	src    []*media.Frame
	copies [2][]media.Frame
	span   map[*media.Track]int64
	pass   int
	i      int
}

func newLoopFrames(fx *transmuxtest.Fixture) *loopFrames {
	// Both tracks loop every 10 s exactly; audio past 10 s is left out.
	l := &loopFrames{span: map[*media.Track]int64{fx.Video: 900000, fx.Audio: 480000}}
	for _, f := range fx.Frames {
		if f.DTS < l.span[f.Track] {
			l.src = append(l.src, f)
		}
	}
	for c := range l.copies {
		l.copies[c] = make([]media.Frame, len(l.src))
	}
	return l
}

func (l *loopFrames) next() *media.Frame {
	cp := l.copies[l.pass%2]
	f := &cp[l.i]
	*f = *l.src[l.i]
	off := int64(l.pass) * l.span[f.Track]
	f.DTS += off
	f.PTS += off
	f.Time = f.Time.Add(time.Duration(l.pass) * 10 * time.Second)
	l.i++
	if l.i == len(l.src) {
		l.i = 0
		l.pass++
	}
	return f
}

// BenchmarkFramesToCMAF measures one frame (video or audio, as interleaved in
// the fixture) through the transmuxer into parts and segments.
func BenchmarkFramesToCMAF(b *testing.B) {
	fx := loadFixture(b)
	var size int
	for _, f := range fx.Frames {
		size += len(f.Data)
	}
	sink := &nopSink{}
	m, err := New(Settings{}, fx.Tracks(), sink)
	if err != nil {
		b.Fatal(err)
	}
	l := newLoopFrames(fx)
	size = 0
	for _, f := range l.src {
		size += len(f.Data)
	}
	size /= len(l.src)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		_ = m.WriteFrame(l.next())
	}
	m.End(nil)
	b.ReportMetric(float64(sink.parts)/float64(b.N), "parts/frame")
}
