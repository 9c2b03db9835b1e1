//go:build !nocodec

package filter

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
)

// fixtureFrames turns an Annex-B fixture into the frames ingest would write:
// AVCC without parameter sets, Config from the first SPS/PPS.
func fixtureFrames(t *testing.T, path string, video *media.Track) []*media.Frame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	var cfg *media.Config
	var sps, pps []byte
	var out []*media.Frame
	var cur [][]byte
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		case h264.NALUTypeIDR, h264.NALUTypeNonIDR:
			if cfg == nil {
				var s h264.SPS
				if err := s.Unmarshal(sps); err != nil {
					t.Fatal(err)
				}
				cfg = &media.Config{SPS: sps, PPS: pps, Width: s.Width(), Height: s.Height()}
			}
			cur = append(cur, n)
			data, _ := h264.AVCC(cur).Marshal()
			ts := int64(len(out)) * 3000
			out = append(out, &media.Frame{Track: video, DTS: ts, PTS: ts, Keyframe: h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR, Config: cfg, Data: data})
			cur = nil
		default:
			cur = append(cur, n)
		}
	}
	return out
}

func publishFixture(t *testing.T, reg *media.Registry, name, path string) (*media.Stream, []*media.Frame) {
	t.Helper()
	src, err := reg.Publish(name, []*media.Track{{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src, fixtureFrames(t, path, src.Tracks[0])
}

// readAll reads the filtered stream to its end.
func readAll(t *testing.T, r *media.Reader) []*media.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*media.Frame
	for {
		f, err := r.Read(ctx)
		if errors.Is(err, media.ErrStreamEnded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

func TestStageRotate90(t *testing.T) {
	reg := media.NewRegistry()
	defer reg.Close()
	m := New(reg, Settings{})
	defer m.Close()
	src, frames := publishFixture(t, reg, "cam", "../../testdata/marker.h264")
	out, err := m.Start(src, Chain{Rotate{Degrees: 90}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != "cam/filtered" {
		t.Fatalf("name %q", out.Name)
	}
	if got, ok := reg.Get("cam/filtered"); !ok || got != out {
		t.Fatal("filtered stream not in the registry")
	}
	r := out.Subscribe("test", 0)
	for _, f := range frames {
		src.Write(f)
	}
	reg.Unpublish(src)
	got := readAll(t, r)
	if len(got) < len(frames)-2 {
		t.Fatalf("%d frames out of %d", len(got), len(frames))
	}
	if !got[0].Keyframe || got[0].Config.Width != 240 || got[0].Config.Height != 320 {
		t.Fatalf("first frame keyframe=%v config %dx%d, want keyframe 240x320", got[0].Keyframe, got[0].Config.Width, got[0].Config.Height)
	}
	// Decode what the stage wrote and find the marker where rotation put it.
	dec, err := codec.NewVideoDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var pics []*codec.Picture
	for _, f := range got {
		var avcc h264.AVCC
		if err := avcc.Unmarshal(f.Data); err != nil {
			t.Fatal(err)
		}
		if f.Keyframe {
			avcc = append([][]byte{f.Config.SPS, f.Config.PPS}, avcc...)
		}
		ab, _ := h264.AnnexB(avcc).Marshal()
		ps, err := dec.Decode(ab, f.PTS)
		if err != nil {
			t.Fatal(err)
		}
		pics = append(pics, ps...)
	}
	if len(pics) == 0 {
		t.Fatal("no pictures decoded")
	}
	p := pics[len(pics)/2]
	if p.Luma(219, 20) < 200 || p.Luma(20, 20) > 50 {
		t.Fatalf("marker: luma at (219,20)=%d (want bright), at (20,20)=%d (want dark)", p.Luma(219, 20), p.Luma(20, 20))
	}
	waitGone(t, m)
	if _, ok := reg.Get("cam/filtered"); ok {
		t.Fatal("filtered stream still published after the source ended")
	}
}

func waitGone(t *testing.T, m *Stages) {
	t.Helper()
	for i := 0; m.Running() > 0; i++ {
		if i > 500 {
			t.Fatal("stage still running")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStageLimit(t *testing.T) {
	reg := media.NewRegistry()
	defer reg.Close()
	m := New(reg, Settings{MaxStages: 1})
	defer m.Close()
	a, _ := publishFixture(t, reg, "a", "../../testdata/marker.h264")
	b, _ := publishFixture(t, reg, "b", "../../testdata/marker.h264")
	if _, err := m.Start(a, Chain{Scale{Width: 160, Height: 120}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(b, Chain{Scale{Width: 160, Height: 120}}); !errors.Is(err, ErrTooManyStages) {
		t.Fatalf("err %v, want ErrTooManyStages", err)
	}
	m.Stop(a)
	if _, err := m.Start(b, Chain{Scale{Width: 160, Height: 120}}); err != nil {
		t.Fatalf("after a stop: %v", err)
	}
}

// TestStageNoLeaks starts and stops 50 stages that each decode and encode;
// goroutines return to the baseline and every transcoder is closed.
func TestStageNoLeaks(t *testing.T) {
	reg := media.NewRegistry()
	defer reg.Close()
	m := New(reg, Settings{})
	defer m.Close()
	var frames []*media.Frame
	before := runtime.NumGoroutine()
	for i := range 50 {
		src, err := reg.Publish("leak", []*media.Track{{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}}, nil)
		if err != nil {
			t.Fatal(i, err)
		}
		if frames == nil {
			frames = fixtureFrames(t, "../../testdata/marker.h264", src.Tracks[0])
		}
		if _, err := m.Start(src, Chain{Rotate{Degrees: 90}}); err != nil {
			t.Fatal(i, err)
		}
		for _, f := range frames[:5] {
			c := *f
			c.Track = src.Tracks[0]
			src.Write(&c)
		}
		if i%2 == 0 {
			m.Stop(src)
		}
		reg.Unpublish(src)
		waitGone(t, m)
	}
	if n := codec.LiveVideoCodecs(); n != 0 {
		t.Errorf("%d video codecs still open after 50 stages", n)
	}
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i > 200 {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines %d > %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestChainGraph(t *testing.T) {
	for _, tc := range []struct {
		chain Chain
		video string
	}{
		{nil, ""},
		{Chain{Gain{Factor: 2}}, ""},
		{Chain{Rotate{Degrees: 90}}, "[in]transpose=clock[out]"},
		{Chain{Rotate{Degrees: 270}, Gain{Factor: 2}, Scale{Width: 640, Height: 360}}, "[in]transpose=cclock[f1];[f1]scale=640:360[out]"},
		{Chain{Crop{X: 1, Y: 2, Width: 30, Height: 40}}, "[in]crop=w=30:h=40:x=1:y=2[out]"},
		{Chain{Image{Path: "/a/b.png", X: -10, Y: 5}}, "movie=filename=/a/b.png[logo_f1];[in][logo_f1]overlay=x=W-w-10:y=5[out]"},
	} {
		if got := tc.chain.VideoGraph(); got != tc.video {
			t.Errorf("%v: %q, want %q", tc.chain, got, tc.video)
		}
	}
	if got := escape("it's a: [test], ok"); !bytes.Equal([]byte(got), []byte(`it\\\'s a\\: \[test\]\, ok`)) {
		t.Errorf("escape: %s", got)
	}
}

// TestStageText draws a title and the clock: the graph must configure
// (drawtext, the font) and the output keep its size.
func TestStageText(t *testing.T) {
	reg := media.NewRegistry()
	defer reg.Close()
	m := New(reg, Settings{})
	defer m.Close()
	src, frames := publishFixture(t, reg, "t", "../../testdata/marker.h264")
	out, err := m.Start(src, Chain{Text{Title: "it's: a [title]", Clock: true}, Crop{Width: 160, Height: 120}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Subscribe("test", 0)
	for _, f := range frames {
		src.Write(f)
	}
	reg.Unpublish(src)
	got := readAll(t, r)
	if len(got) == 0 || got[0].Config.Width != 160 || got[0].Config.Height != 120 {
		t.Fatalf("%d frames", len(got))
	}
}

// TestStageCropTooBig: a crop larger than the picture ends the filtered
// stream once instead of failing every frame.
func TestStageCropTooBig(t *testing.T) {
	reg := media.NewRegistry()
	defer reg.Close()
	m := New(reg, Settings{})
	defer m.Close()
	src, frames := publishFixture(t, reg, "big", "../../testdata/marker.h264")
	out, err := m.Start(src, Chain{Crop{Width: 640, Height: 480}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Subscribe("test", 0)
	for _, f := range frames {
		src.Write(f)
	}
	if got := readAll(t, r); len(got) != 0 {
		t.Fatalf("%d frames from an impossible crop", len(got))
	}
	waitGone(t, m)
}
