package packager

import (
	"testing"

	"github.com/whipcast/whipcast/media"
)

// After a short first segment (transmux Segment.Short) the segment in
// production is announced a target long, not as short as the first: dash.js
// asks for the next segment at the announced end.
func TestDASHShortFirstSegment(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{Window: 3})
	want := false
	x.tm.SetKeyframeRequest(func() { want = true }) // a publisher that answers at once
	for _, f := range x.fx.Frames {
		if f.Seconds(f.DTS) >= 1.0 {
			break
		}
		x.mu.Lock()
		x.now = fixtureBase.Add(seconds(f.Seconds(f.DTS)))
		x.mu.Unlock()
		g := *f
		if g.Track.Kind == media.KindVideo && want {
			g.Keyframe, want = true, false
		}
		_ = x.tm.WriteFrame(&g)
	}
	_, m := x.mpd(t)
	for _, as := range m.Periods[0].AdaptationSets {
		s := as.SegmentTemplate.Timeline.S
		if len(s) != 2 || s[0].R != 0 {
			t.Fatalf("%s: timeline %+v, want the short first segment and the one in production", as.ContentType, s)
		}
		ts := float64(as.SegmentTemplate.Timescale)
		if d := float64(s[0].D) / ts; d < 0.2 || d > 0.3 {
			t.Errorf("%s: first segment lasts %.3f s, want the short one", as.ContentType, d)
		}
		if d := float64(s[1].D) / ts; d != 2 {
			t.Errorf("%s: segment in production announced %.3f s long, want the 2 s target", as.ContentType, d)
		}
	}
}
