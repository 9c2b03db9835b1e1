//go:build !nocodec

package codec

import (
	"bytes"
	"math"
	"testing"
)

// TestEncodeFitDecode: a two-colour picture encoded by VideoEncoder and
// decoded by FitDecoder into a smaller box keeps its aspect ratio and its
// colours on the right sides.
func TestEncodeFitDecode(t *testing.T) {
	enc, err := NewVideoEncoder(VideoSettings{}, 320, 240, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := NewFitDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	p := NewPicture(320, 240)
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			if x >= 160 {
				p.Y[y*320+x] = 200
			} else {
				p.Y[y*320+x] = 50
			}
		}
	}
	var got []*Picture
	for i := 0; i < 10; i++ {
		p.PTS = int64(i) * 3000
		pkts, err := enc.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		for j, k := range pkts {
			if i == 0 && j == 0 && (!k.Keyframe || !bytes.Contains(k.Data, []byte{0, 0, 1, 0x67})) {
				t.Fatalf("first access unit: keyframe %v, has SPS %v", k.Keyframe, bytes.Contains(k.Data, []byte{0, 0, 1, 0x67}))
			}
			if k.DTS != k.PTS {
				t.Fatalf("B-frames: dts %d pts %d", k.DTS, k.PTS)
			}
			pics, err := dec.Decode(k.Data, k.PTS, 200, 200)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, pics...)
		}
	}
	if len(got) == 0 {
		t.Fatal("no pictures decoded")
	}
	q := got[len(got)-1]
	if q.Width != 200 || q.Height != 150 {
		t.Fatalf("fitted size %dx%d, want 200x150", q.Width, q.Height)
	}
	if l, r := q.Luma(40, 75), q.Luma(160, 75); math.Abs(float64(l)-50) > 6 || math.Abs(float64(r)-200) > 6 {
		t.Fatalf("luma left %d right %d, want ~50 and ~200", l, r)
	}
	if LiveVideoCodecs() != 2 {
		t.Fatalf("LiveVideoCodecs %d, want 2", LiveVideoCodecs())
	}
	enc.Close()
	dec.Close()
	if LiveVideoCodecs() != 0 {
		t.Fatalf("LiveVideoCodecs %d after Close", LiveVideoCodecs())
	}
}

// TestOpusRoundTrip: a 660 Hz tone through NewOpusEncoder and NewOpusDecoder
// comes back at 660 Hz and about the same level.
func TestOpusRoundTrip(t *testing.T) {
	enc, err := NewOpusEncoder(0)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := NewOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	n := enc.FrameSize()
	if n != 960 {
		t.Fatalf("frame size %d", n)
	}
	var pcm []float32
	frame := make([]float32, 2*n)
	for k := 0; k < 50; k++ {
		for i := 0; i < n; i++ {
			v := float32(0.5 * math.Sin(2*math.Pi*660*float64(k*n+i)/48000))
			frame[2*i], frame[2*i+1] = v, v
		}
		pkts, err := enc.Encode(frame, int64(k*n))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			if pcm, err = dec.Decode(pcm, p.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(pcm) < 2*40*n {
		t.Fatalf("decoded %d samples", len(pcm)/2)
	}
	mono := make([]float64, 0, len(pcm)/2)
	for i := 0; i+1 < len(pcm); i += 2 {
		mono = append(mono, float64(pcm[i]))
	}
	mono = mono[len(mono)/2:] // past the codec's start-up
	at := func(f float64) float64 { return goertzel(mono, f, 48000) }
	if a, b := at(660), at(440); a < 0.2 || b > a/20 {
		t.Fatalf("660 Hz amplitude %.3f, 440 Hz %.3f", a, b)
	}
	if _, err := dec.Decode(nil, []byte{0xff, 0x00, 0x13}); err != nil {
		t.Fatalf("corrupt packet: %v", err)
	}
}

// goertzel returns the amplitude of frequency f in x.
func goertzel(x []float64, f, rate float64) float64 {
	w := 2 * math.Pi * f / rate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	re := s1 - s2*math.Cos(w)
	im := s2 * math.Sin(w)
	return 2 * math.Hypot(re, im) / float64(len(x))
}
