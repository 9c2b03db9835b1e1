package packager

import (
	"bufio"
	"strconv"
	"strings"
	"testing"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// TestDiscontinuitySequenceStable: a segment's discontinuity sequence number
// (EXT-X-DISCONTINUITY-SEQUENCE plus the EXT-X-DISCONTINUITY tags before it)
// stays the same in every playlist that lists it, also while the segment
// that starts the discontinuity is the first of the window (RFC 8216bis
// 6.2.2; hls.js stops with "discontinuity sequence mismatch" otherwise).
func TestDiscontinuitySequenceStable(t *testing.T) {
	fx := loadFixture(t)
	h := NewHLS(HLSSettings{Window: 2}, nil)
	defer h.Close()
	st := newHLSStream(h, "live/cam", "e1")
	tm, _ := transmux.New(h.set.tm, fx.Tracks(), st)
	c0 := fx.VideoFrames[0].Config
	c1 := &media.Config{SPS: c0.SPS, PPS: c0.PPS, Width: c0.Width, Height: c0.Height}
	seen := map[string]int{} // segment URI → its discontinuity sequence number
	check := func() {
		st.mu.Lock()
		pl := string(st.renderMedia(nil, st.track("video")))
		st.mu.Unlock()
		seq := 0
		sc := bufio.NewScanner(strings.NewReader(pl))
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "#EXT-X-DISCONTINUITY-SEQUENCE:"):
				seq, _ = strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-DISCONTINUITY-SEQUENCE:"))
			case l == "#EXT-X-DISCONTINUITY":
				seq++
			case strings.HasSuffix(l, ".m4s") && !strings.HasPrefix(l, "#"):
				if was, ok := seen[l]; ok && was != seq {
					t.Fatalf("%s: discontinuity sequence %d, was %d:\n%s", l, seq, was, pl)
				}
				seen[l] = seq
			}
		}
	}
	for _, f := range fx.Frames {
		if f.Track == fx.Video && f.DTS >= 4*90000 {
			g := *f
			g.Config = c1 // a real change from 4 s on: a discontinuity at segment 2
			f = &g
		}
		_ = tm.WriteFrame(f)
		check()
	}
	if seen["video_e1_seg2.m4s"] != 1 || seen["video_e1_seg3.m4s"] != 1 {
		t.Errorf("discontinuity sequence numbers %v, want 1 from segment 2 on", seen)
	}
}
