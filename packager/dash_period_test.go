package packager

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
)

// withChanges rewrites the harness's frames: from each time in cfgAt on the
// video carries a new Config (a new pointer with another size: what ingest
// makes of a new SPS), and at each time in discAt both tracks' first frame
// carries Discontinuity (a resumed publish, same configuration).
func (x *dashHarness) withChanges(cfgAt, discAt []float64) {
	var cfg *media.Config
	ci, di := 0, 0
	seen := map[*media.Track]bool{}
	var out []*media.Frame
	for _, f := range x.fx.Frames {
		g := *f
		sec := g.Seconds(g.DTS)
		if g.Track.Kind == media.KindVideo {
			if ci < len(cfgAt) && sec >= cfgAt[ci] && g.Keyframe {
				c := *g.Config
				c.Width, c.Height = 160*(ci+3), 90*(ci+3)
				cfg = &c
				ci++
			}
			if cfg != nil {
				g.Config = cfg
			}
		}
		if di < len(discAt) && sec >= discAt[di] {
			if !seen[g.Track] && (g.Track.Kind != media.KindVideo || g.Keyframe) {
				g.Discontinuity, seen[g.Track] = true, true
			}
			if len(seen) == len(x.fx.Tracks()) {
				di, seen = di+1, map[*media.Track]bool{}
			}
		}
		out = append(out, &g)
	}
	x.fx.Frames = out
}

// urls expands every SegmentTimeline of m into segment URLs, per Period.
func urls(m mpdXML) [][]string {
	var out [][]string
	for _, p := range m.Periods {
		var u []string
		for _, as := range p.AdaptationSets {
			var tt uint64
			for _, s := range as.SegmentTemplate.Timeline.S {
				if s.T != nil {
					tt = *s.T
				}
				for range s.R + 1 {
					u = append(u, strings.ReplaceAll(as.SegmentTemplate.Media, "$Time$", strconv.FormatUint(tt, 10)))
					tt += s.D
				}
			}
		}
		out = append(out, u)
	}
	return out
}

func parseISODuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(strings.ToLower(strings.TrimPrefix(s, "PT")))
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// TestDASHResolutionChanges: two init changes (at 4 s and 8 s, keyframes)
// open two new Periods. At every moment: no segment is announced in a
// Period that does not hold it (in particular not the old Period's next
// segment while the change is being cut), no URL appears in two Periods, a
// closed Period lasts exactly its segments and the next starts there, and
// the stale URL of the old Period answers 404 at once.
func TestDASHResolutionChanges(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{Window: 10, BlockTimeout: 3 * time.Second})
	x.withChanges([]float64{4, 8}, nil)
	seen := map[string]int{}         // URL -> Period index it was announced in
	announced := map[string]uint64{} // URL -> @d while in production
	check := func(at float64) mpdXML {
		x.until(at)
		_, m := x.mpd(t)
		// The segment in production (the open Period's last S) is never
		// announced shorter than it turns out: dash.js asks for the next
		// one at the announced end.
		x.d.mu.Lock()
		st := x.d.streams["live/cam"]
		x.d.mu.Unlock()
		for pi, p := range m.Periods {
			for ai, as := range p.AdaptationSets {
				var tt uint64
				var last string
				var lastD uint64
				for _, e := range as.SegmentTemplate.Timeline.S {
					if e.T != nil {
						tt = *e.T
					}
					for range e.R + 1 {
						u := strings.ReplaceAll(as.SegmentTemplate.Media, "$Time$", strconv.FormatUint(tt, 10))
						if d, ok := announced[u]; ok && e.D > d && !(pi == len(m.Periods)-1 && u == last) {
							t.Errorf("at %.2f s: %s announced with d=%d, it lasts %d", at, u, d, e.D)
						}
						last, lastD = u, e.D
						tt += e.D
					}
				}
				st.mu.Lock()
				inProd := pi == len(m.Periods)-1 && len(st.periods[len(st.periods)-1].tracks) > ai &&
					len(st.periods[len(st.periods)-1].tracks[ai].parts) > 0
				st.mu.Unlock()
				if inProd {
					if _, ok := announced[last]; !ok {
						announced[last] = lastD
					}
				}
			}
		}
		for i, p := range m.Periods {
			if len(p.AdaptationSets) != 2 {
				t.Fatalf("at %.2f s: Period %s has %d AdaptationSets, want video and audio", at, p.ID, len(p.AdaptationSets))
			}
			if i == len(m.Periods)-1 && p.Duration != "" {
				t.Fatalf("at %.2f s: the last Period %s has a duration", at, p.ID)
			}
		}
		for pi, us := range urls(m) {
			for _, u := range us {
				if p, ok := seen[u]; ok && p != pi {
					t.Fatalf("at %.2f s: %s announced in Period %d and %d", at, u, p, pi)
				}
				seen[u] = pi
			}
		}
		return m
	}
	for at := 2.1; at < 9.5; at += 0.1 { // the first MPD waits for a segment
		check(at)
	}
	// 3.99..4.01: the cut at 4 s happened (segment 1 complete), no chunk of
	// the new Period yet: Period 0 must not announce t=360000.
	x2 := newDASHHarness(t, DASHSettings{Window: 10})
	x2.withChanges([]float64{4, 8}, nil)
	x2.until(4.01)
	_, m := x2.mpd(t)
	if len(m.Periods) != 1 {
		t.Fatalf("%d Periods before the first chunk after the change", len(m.Periods))
	}
	for _, u := range urls(m)[0] {
		if strings.HasSuffix(u, "_t360000.m4s") {
			t.Fatalf("Period 0 announces %s, the first segment of the next Period", u)
		}
	}

	m = check(10.5)
	if len(m.Periods) != 3 {
		t.Fatalf("%d Periods, want 3", len(m.Periods))
	}
	wantStart := []time.Duration{0, 4 * time.Second, 8 * time.Second}
	for i, p := range m.Periods {
		if got := parseISODuration(t, p.Start); got != wantStart[i] {
			t.Errorf("Period %d starts at %v, want %v", i, got, wantStart[i])
		}
		if i < 2 {
			if got := parseISODuration(t, p.Duration); got != 4*time.Second {
				t.Errorf("closed Period %d lasts %q, want PT4S (its segments)", i, p.Duration)
			}
		} else if p.Duration != "" {
			t.Errorf("open Period has a duration %q", p.Duration)
		}
		v := p.AdaptationSets[0].SegmentTemplate
		if want := "video_1_init" + strconv.Itoa(i) + ".mp4"; v.Initialization != want {
			t.Errorf("Period %d: init %s, want %s", i, v.Initialization, want)
		}
		if pto := v.PresentationTimeOffset; pto != uint64(wantStart[i].Seconds()*90000) {
			t.Errorf("Period %d: presentationTimeOffset %d", i, pto)
		}
		// Exact: the Period's video segments add up to its duration.
		var sum uint64
		for _, s := range v.Timeline.S {
			sum += s.D * uint64(s.R+1)
		}
		if i < 2 && sum != 4*90000 {
			t.Errorf("Period %d: segments add up to %d ticks, want %d", i, sum, 4*90000)
		}
	}
	if m.Periods[1].AdaptationSets[0].Representations[0].Width != 480 {
		t.Errorf("Period 1 video width %d", m.Periods[1].AdaptationSets[0].Representations[0].Width)
	}
	// The old Period's next segment (the new Period's first) is not served
	// under the old Period's URL, and is under the new one.
	old := strings.ReplaceAll(m.Periods[0].AdaptationSets[0].SegmentTemplate.Media, "$Time$", "360000")
	start := time.Now()
	if resp, _ := x.get(t, "live/cam/"+old); resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s: %d, want 404", old, resp.StatusCode)
	}
	// A request that blocked returns no earlier than the block timeout
	// (3 s); one answered at once is far below it on any machine.
	if time.Since(start) >= 3*time.Second {
		t.Errorf("%s: the 404 waited for the block timeout", old)
	}
	cur := strings.ReplaceAll(m.Periods[1].AdaptationSets[0].SegmentTemplate.Media, "$Time$", "360000")
	if resp, _ := x.get(t, "live/cam/"+cur); resp.StatusCode != 200 {
		t.Errorf("%s: %d", cur, resp.StatusCode)
	}
	// The end: static, the same Periods, the last one closed too.
	x.until(1e9)
	x.tm.End(nil)
	_, m = x.mpd(t)
	if m.Type != "static" || len(m.Periods) != 3 {
		t.Fatalf("ended: %s, %d Periods", m.Type, len(m.Periods))
	}
}

// TestDASHDiscontinuityNewPeriod: Frame.Discontinuity with the same
// configuration (a publisher that reconnected) opens a new Period with the
// same init and its own segment URLs.
func TestDASHDiscontinuityNewPeriod(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{Window: 10})
	x.withChanges(nil, []float64{6}) // the fixture's keyframes are 2 s apart
	x.until(7.5)
	_, m := x.mpd(t)
	if len(m.Periods) != 2 {
		t.Fatalf("%d Periods, want 2", len(m.Periods))
	}
	v0, v1 := m.Periods[0].AdaptationSets[0].SegmentTemplate, m.Periods[1].AdaptationSets[0].SegmentTemplate
	if v0.Initialization != v1.Initialization {
		t.Errorf("inits %s and %s: the configuration did not change", v0.Initialization, v1.Initialization)
	}
	if v0.Media == v1.Media {
		t.Errorf("both Periods use media %s", v0.Media)
	}
	if got := parseISODuration(t, m.Periods[1].Start); got != 6*time.Second {
		t.Errorf("second Period starts at %v, want 6s", got)
	}
	if got := parseISODuration(t, m.Periods[0].Duration); got != 6*time.Second {
		t.Errorf("first Period lasts %v, want 6s", got)
	}
}

// TestDASHPeriodsWithoutLowLatency: with only complete segments listed (the
// origin's MPD), a new Period appears once its every track has a complete
// segment; until then the last Period shown has no @duration.
func TestDASHPeriodsWithoutLowLatency(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{Window: 10, DisableLowLatency: true})
	x.withChanges([]float64{4}, nil)
	for at := 2.1; at < 8.5; at += 0.1 {
		x.until(at)
		_, m := x.mpd(t)
		for i, p := range m.Periods {
			if len(p.AdaptationSets) != 2 {
				t.Fatalf("at %.2f s: Period %s has %d AdaptationSets", at, p.ID, len(p.AdaptationSets))
			}
			if last := i == len(m.Periods)-1; last != (p.Duration == "") {
				t.Fatalf("at %.2f s: Period %s (last %v) has duration %q", at, p.ID, last, p.Duration)
			}
		}
		if want := 1 + btoi(at > 6.05); len(m.Periods) != want {
			t.Fatalf("at %.2f s: %d Periods, want %d", at, len(m.Periods), want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
