//go:build !nocodec

package codec

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// accessUnits splits an Annex-B file into access units: each VCL NAL (one
// slice per picture in the fixtures) closes a unit with the NALs before it.
func accessUnits(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	var cur []byte
	sc := []byte{0, 0, 0, 1}
	for _, nal := range bytes.Split(b, []byte{0, 0, 1}) {
		nal = bytes.TrimRight(nal, "\x00")
		if len(nal) == 0 {
			continue
		}
		cur = append(append(cur, sc...), nal...)
		if typ := nal[0] & 0x1f; typ == 1 || typ == 5 {
			aus = append(aus, cur)
			cur = nil
		}
	}
	return aus
}

// transcodeAndDecode runs the fixture through filter and decodes the output.
func transcodeAndDecode(t *testing.T, fixture, filter string) []*Picture {
	t.Helper()
	tc, err := NewVideoTranscoder(VideoSettings{Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	dec, err := NewVideoDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var pics []*Picture
	keys := 0
	add := func(pkts []VideoPacket) {
		for _, p := range pkts {
			if p.Keyframe {
				keys++
			}
			ps, err := dec.Decode(p.Data, p.PTS)
			if err != nil {
				t.Fatal(err)
			}
			pics = append(pics, ps...)
		}
	}
	for i, au := range accessUnits(t, filepath.Join("..", "..", "testdata", fixture)) {
		pkts, err := tc.Transcode(au, int64(i)*3000)
		if err != nil {
			t.Fatal(err)
		}
		add(pkts)
	}
	pkts, err := tc.Flush()
	if err != nil {
		t.Fatal(err)
	}
	add(pkts)
	if keys == 0 || len(pics) == 0 {
		t.Fatalf("%d keyframes, %d pictures", keys, len(pics))
	}
	return pics
}

func TestVideoFilters(t *testing.T) {
	logo, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "logo.png"))
	bright := func(p *Picture, x, y int) bool { return p.Luma(x, y) > 200 }
	for _, tc := range []struct {
		name, filter string
		w, h         int
		on, off      [][2]int // pixels expected bright / dark
	}{
		{"none", "", 320, 240, [][2]int{{20, 20}}, [][2]int{{219, 20}}},
		// transpose=clock: (x, y) of a W×H picture goes to (H-1-y, x).
		{"rotate90", "transpose=clock", 240, 320, [][2]int{{219, 20}}, [][2]int{{20, 20}}},
		{"scale", "scale=640:360", 640, 360, [][2]int{{30, 22}}, [][2]int{{300, 300}}},
		{"overlay", "[in]null[v];movie=" + logo + "[l];[v][l]overlay=x=200:y=150[out]", 320, 240,
			[][2]int{{20, 20}, {208, 158}}, [][2]int{{190, 158}, {208, 140}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pics := transcodeAndDecode(t, "marker.h264", tc.filter)
			p := pics[len(pics)/2]
			if p.Width != tc.w || p.Height != tc.h {
				t.Fatalf("size %dx%d, want %dx%d", p.Width, p.Height, tc.w, tc.h)
			}
			for _, xy := range tc.on {
				if !bright(p, xy[0], xy[1]) {
					t.Errorf("pixel %v: luma %d, want bright", xy, p.Luma(xy[0], xy[1]))
				}
			}
			for _, xy := range tc.off {
				if bright(p, xy[0], xy[1]) {
					t.Errorf("pixel %v: luma %d, want dark", xy, p.Luma(xy[0], xy[1]))
				}
			}
		})
	}
}

func TestVideoTranscoderBadFilter(t *testing.T) {
	if _, err := NewVideoTranscoder(VideoSettings{Filter: "nosuchfilter=1"}); err == nil {
		t.Fatal("no error for an unknown filter")
	}
}

// BenchmarkRotate320x240 measures decode + transpose + libx264 encode of
// the 320x240 30 fps fixture; cores/stream is process CPU time per second of
// video (x264 runs its own threads, so wall time would under-count).
func BenchmarkRotate320x240(b *testing.B) {
	t := &testing.T{}
	aus := accessUnits(t, filepath.Join("..", "..", "testdata", "av.h264"))
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	frames := 0
	for b.Loop() {
		tc, err := NewVideoTranscoder(VideoSettings{Filter: "transpose=clock"})
		if err != nil {
			b.Fatal(err)
		}
		for i, au := range aus {
			if _, err := tc.Transcode(au, int64(i)*3000); err != nil {
				b.Fatal(err)
			}
		}
		_, _ = tc.Flush()
		tc.Close()
		frames += len(aus)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(cpu.Seconds()/(float64(frames)/30), "cores/stream")
}
