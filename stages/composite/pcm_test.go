package composite

import (
	"math"
	"testing"
)

func tone(f, amp float64, from, n int) []float32 {
	out := make([]float32, 2*n)
	for i := 0; i < n; i++ {
		v := float32(amp * math.Sin(2*math.Pi*f*float64(from+i)/48000))
		out[2*i], out[2*i+1] = v, v
	}
	return out
}

// goertzel returns the amplitude of frequency f in the left channel of x.
func goertzel(x []float32, f float64) float64 {
	w := 2 * math.Pi * f / 48000
	c := 2 * math.Cos(w)
	var s1, s2 float64
	n := len(x) / 2
	for i := 0; i < n; i++ {
		s1, s2 = float64(x[2*i])+c*s1-s2, s1
	}
	return 2 * math.Hypot(s1-s2*math.Cos(w), s2*math.Sin(w)) / float64(n)
}

// TestLimiter: three loud tones summed would peak at 1.8; through the
// limiter no sample passes the ceiling, all three tones remain, and a quiet
// passage afterwards gets its full level back.
func TestLimiter(t *testing.T) {
	l := newLimiter()
	var out []float32
	const block = 960
	for k := 0; k < 100; k++ {
		mix := make([]float32, 2*block)
		amp := 0.6
		if k >= 50 {
			amp = 0.2 // quiet: 0.6 peak in sum, under the ceiling
		}
		for _, f := range []float64{440, 660, 880} {
			for i, v := range tone(f, amp, k*block, block) {
				mix[i] += v
			}
		}
		if b := l.process(mix); b != nil {
			out = append(out, b...)
		}
	}
	var peak float32
	for _, v := range out {
		peak = max(peak, v, -v)
	}
	if peak > ceiling+1e-6 {
		t.Fatalf("peak %.4f over the ceiling %.2f", peak, ceiling)
	}
	loud := out[2*10*block : 2*40*block]
	for _, f := range []float64{440, 660, 880} {
		if a := goertzel(loud, f); a < 0.25 {
			t.Errorf("%v Hz at %.3f in the loud part", f, a)
		}
	}
	if a := goertzel(loud, 550); a > 0.02 {
		t.Errorf("550 Hz (not sent) at %.3f: distortion", a)
	}
	quiet := out[2*80*block:]
	if a := goertzel(quiet, 660); math.Abs(a-0.2) > 0.01 {
		t.Errorf("quiet 660 Hz at %.3f, want 0.2 (gain recovered)", a)
	}
}

// TestPCMBufferJitter: packets whose positions jitter by a few ms are laid
// end to end (a continuous tone, no gap or overlap), a late packet is
// dropped, and a long gap is silence.
func TestPCMBufferJitter(t *testing.T) {
	b := newPCMBuffer()
	var mixed int64
	var out []float32
	jitter := []int64{0, 48, -96, 200, -30, 150, 0, -200, 90, 10}
	for k := 0; k < 50; k++ {
		pos := int64(k*960) + jitter[k%len(jitter)]
		b.put(pos, tone(440, 0.5, k*960, 960), mixed)
		if k%2 == 1 { // mix 40 ms every second packet
			dst := make([]float32, 2*1920)
			b.mixInto(dst, mixed)
			out = append(out, dst...)
			mixed += 1920
		}
	}
	want := tone(440, 0.5, 0, len(out)/2)
	for i := range out {
		if math.Abs(float64(out[i]-want[i])) > 1e-6 {
			t.Fatalf("sample %d: %v, want %v", i/2, out[i], want[i])
		}
	}
	// A packet for a range already mixed is not heard.
	b.put(0, tone(440, 0.5, 0, 960), mixed)
	// A gap of a second: silence, then the new audio at its place.
	gapAt := mixed + 48000
	b.put(gapAt, tone(440, 0.5, 0, 960), mixed)
	dst := make([]float32, 2*48000)
	b.mixInto(dst, mixed)
	for _, v := range dst {
		if v != 0 {
			t.Fatal("the gap is not silent")
		}
	}
	dst = make([]float32, 2*960)
	b.mixInto(dst, gapAt)
	if a := goertzel(dst, 440); a < 0.45 {
		t.Fatalf("after the gap: 440 Hz at %.3f", a)
	}
}

func TestTiles(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 3, 4: 4, 9: 9, 12: 9} {
		tiles := Tiles(Grid, n, 1280, 720)
		if len(tiles) != want {
			t.Fatalf("grid %d: %d tiles", n, len(tiles))
		}
		for i, r := range tiles {
			if r.X%2+r.Y%2+r.W%2+r.H%2 != 0 || r.X < 0 || r.Y < 0 || r.X+r.W > 1280 || r.Y+r.H > 720 {
				t.Fatalf("grid %d tile %d: %+v", n, i, r)
			}
			for j := 0; j < i; j++ {
				o := tiles[j]
				if r.X < o.X+o.W && o.X < r.X+r.W && r.Y < o.Y+o.H && o.Y < r.Y+r.H {
					t.Fatalf("grid %d: tiles %d and %d overlap", n, i, j)
				}
			}
		}
	}
	if g := Tiles(Grid, 2, 1280, 720); g[0] != (Rect{0, 0, 640, 720}) || g[1] != (Rect{640, 0, 640, 720}) {
		t.Fatalf("grid 2: %+v", g)
	}
	// 3: two on top, one centred below.
	if g := Tiles(Grid, 3, 1280, 720); g[2] != (Rect{320, 360, 640, 360}) {
		t.Fatalf("grid 3: %+v", g)
	}
	s := Tiles(Speaker, 3, 1280, 720)
	if s[0] != (Rect{0, 0, 1280, 540}) || s[1] != (Rect{320, 540, 320, 180}) || s[2] != (Rect{640, 540, 320, 180}) {
		t.Fatalf("speaker 3: %+v", s)
	}
	if len(Tiles(Speaker, 8, 1280, 720)) != 5 {
		t.Fatal("speaker shows 1 + 4")
	}
}
