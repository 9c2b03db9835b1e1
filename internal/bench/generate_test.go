package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

func TestGenerateFlags(t *testing.T) {
	for s, want := range map[string]int{"2500k": 2500000, "2.5M": 2500000, "800000": 800000, "64K": 64000} {
		if got, err := parseBitrate(s); err != nil || got != want {
			t.Errorf("parseBitrate(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "k", "-1k", "fast"} {
		if _, err := parseBitrate(s); !errors.Is(err, ErrUsage) {
			t.Errorf("parseBitrate(%q): %v, want ErrUsage", s, err)
		}
	}
	c, err := parseFlags([]string{"-video", "gen", "-gen-size", "640x360", "-gen-bitrate", "1M"}, &bytes.Buffer{})
	if err != nil || c.GenSize != "640x360" || c.GenBitrate != 1000000 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, args := range [][]string{{"-video", "gen", "-gen-size", "720p"}, {"-video", "gen", "-gen-bitrate", "lots"}} {
		if _, err := parseFlags(args, &bytes.Buffer{}); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want ErrUsage", args, err)
		}
	}
	args := strings.Join(videoGenArgs("v.h264", "1280x720", 30, 2*time.Second, 2500000), " ")
	for _, want := range []string{"testsrc2=size=1280x720:rate=30", "-g 60 -keyint_min 60", "-b:v 2500000", "-profile:v baseline", "-f h264 v.h264"} {
		if !strings.Contains(args, want) {
			t.Errorf("video args lack %q: %s", want, args)
		}
	}
	if a := audioGenArgs("a.ogg"); !slices.Contains(a, "-page_duration") || a[len(a)-1] != "a.ogg" {
		t.Errorf("audio args %q", a)
	}
}

// TestGenerate makes a small clip with the ffmpeg on PATH: the video has
// a keyframe every GOP, the audio one 20 ms Opus packet per Ogg page, and
// both files go when the run ends.
func TestGenerate(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	c := Config{Video: genVideo, Audio: genVideo, GenSize: "160x120", GenBitrate: 100000, FPS: 30, GOP: time.Second}
	g, cleanup, err := generate(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(g.Video)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := h264reader.NewReader(f)
	idr, slices := 0, 0
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch nal.UnitType {
		case h264reader.NalUnitTypeCodedSliceIdr:
			idr++
			slices++
		case h264reader.NalUnitTypeCodedSliceNonIdr:
			slices++
		}
	}
	f.Close()
	if slices != genSeconds*30 || idr != genSeconds {
		t.Errorf("%d frames, %d keyframes; want %d, %d", slices, idr, genSeconds*30, genSeconds)
	}
	a, err := os.Open(g.Audio)
	if err != nil {
		t.Fatal(err)
	}
	or, _, err := oggreader.NewWith(a)
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for {
		p, _, err := or.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(p, []byte("Opus")) {
			pages++
		}
	}
	a.Close()
	if pages < genSeconds*50-2 || pages > genSeconds*50+2 {
		t.Errorf("%d Opus pages, want ~%d (one 20 ms packet each)", pages, genSeconds*50)
	}
	cleanup()
	if _, err := os.Stat(g.Video); !os.IsNotExist(err) {
		t.Errorf("generated file left behind: %v", err)
	}
}
