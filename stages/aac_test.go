//go:build !nocodec

package stages

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
)

func fixtureOpus(t *testing.T) [][]byte {
	t.Helper()
	f, err := os.Open("../testdata/av.ogg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		p, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(p) >= 8 && (string(p[:4]) == "Opus") {
			continue
		}
		out = append(out, p)
	}
}

// TestAACStage: one transcode per stream shared by two consumers, video passed
// through untouched, AAC on the source timeline (its DTS, and its wall time
// where its DTS lies by the source's mapping, as HLS dates segments from
// it), stopped with the last release.
func TestAACStage(t *testing.T) {
	pkts := fixtureOpus(t)[:100] // 2 s
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	src := media.NewStream("cam", []*media.Track{video, audio}, nil)
	a := NewAAC(codec.AACSettings{}, nil)

	d1, rel1, err := a.Acquire(src)
	if err != nil {
		t.Fatal(err)
	}
	d2, rel2, err := a.Acquire(src)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 || a.Running() != 1 {
		t.Fatalf("two acquires made %d transcodes", a.Running())
	}
	if d1.Tracks[1].Codec != media.CodecAAC || d1.Tracks[0].Codec != media.CodecH264 {
		t.Fatalf("derived tracks %v %v", d1.Tracks[0].Codec, d1.Tracks[1].Codec)
	}
	rd := d1.Subscribe("test", 0)
	defer rd.Close()
	// Give the stage's reader time to subscribe before writing.
	deadline := time.Now().Add(15 * time.Second)
	for src.Readers() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	const t0 = 96000 // 2 s into the source timeline
	cfg := &media.Config{SPS: []byte{0x67}, PPS: []byte{0x68}}
	src.Write(&media.Frame{Track: video, DTS: t0 / 48000 * 90000, PTS: t0 / 48000 * 90000, Keyframe: true, Config: cfg, Data: []byte{0, 0, 0, 1, 0x65}})
	// The source's frames are dated as ingest dates them: one origin plus
	// the DTS.
	origin := time.Unix(1_700_000_000, 0)
	at := func(ticks int64) time.Time { return origin.Add(time.Duration(ticks) * time.Second / 48000) }
	for i, p := range pkts {
		dts := t0 + int64(i)*960
		src.Write(&media.Frame{Track: audio, DTS: dts, PTS: dts, Keyframe: true, Data: p, Time: at(dts)})
	}
	src.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var nv, na int
	var first, last int64
	for {
		f, err := rd.Read(ctx)
		if errors.Is(err, media.ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Track.Kind == media.KindVideo {
			nv++
			if f.Config != cfg || f.DTS != 180000 {
				t.Error("video frame changed on its way through")
			}
			continue
		}
		if na == 0 {
			first = f.DTS
			if len(f.Config.AudioSpecificConfig) < 2 {
				t.Error("AAC frame without AudioSpecificConfig")
			}
		} else if f.DTS != last+1024 {
			t.Errorf("AAC DTS %d after %d", f.DTS, last)
		}
		if d := f.Time.Sub(at(f.DTS)); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("AAC frame at DTS %d dated %v from where its DTS lies", f.DTS, d)
		}
		last = f.DTS
		na++
	}
	if nv != 1 || first != t0-1024 {
		t.Errorf("%d video frames, first AAC at %d; want 1 and %d", nv, first, t0-1024)
	}
	if got := last + 1024 - t0; got < 96000 || got > 96000+2048 {
		t.Errorf("AAC covers %d samples, want ~96000", got)
	}
	rel1()
	rel1() // idempotent
	if a.Running() != 1 {
		t.Fatal("stage stopped while a consumer still holds it")
	}
	rel2()
	if a.Running() != 0 {
		t.Fatal("stage still running after the last release")
	}
}

// TestAACStageDiscontinuity: at a reconnect (Frame.Discontinuity on the Opus
// track after a 5 s gap) the stage starts a new transcode at the resumed
// timestamps instead of filling the gap with silence, and marks the first
// AAC frame after it.
func TestAACStageDiscontinuity(t *testing.T) {
	pkts := fixtureOpus(t)[:100]
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	src := media.NewStream("cam", []*media.Track{audio}, nil)
	a := NewAAC(codec.AACSettings{}, nil)
	d, rel, err := a.Acquire(src)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	rd := d.Subscribe("test", 0)
	defer rd.Close()
	const t0, gap = 48000, 5 * 48000
	t1 := int64(t0 + 50*960 + gap)
	for i, p := range pkts[:50] {
		src.Write(&media.Frame{Track: audio, DTS: t0 + int64(i)*960, PTS: t0 + int64(i)*960, Keyframe: true, Data: p})
	}
	for i, p := range pkts[50:] {
		ts := t1 + int64(i)*960
		src.Write(&media.Frame{Track: audio, DTS: ts, PTS: ts, Keyframe: true, Data: p, Discontinuity: i == 0})
	}
	src.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var before, after, discs int
	last := int64(-1 << 62)
	for {
		f, err := rd.Read(ctx)
		if errors.Is(err, media.ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.DTS <= last {
			t.Fatalf("AAC DTS %d after %d", f.DTS, last)
		}
		last = f.DTS
		switch {
		case f.DTS < t0+50*960+2048:
			before++
		case f.DTS >= t1-2048:
			after++
		default:
			t.Fatalf("AAC frame at %d, inside the gap: the interruption was filled", f.DTS)
		}
		if f.Discontinuity {
			discs++
			if f.DTS < t1-2048 {
				t.Errorf("Discontinuity on a frame at %d, before the resume at %d", f.DTS, t1)
			}
		}
	}
	if discs != 1 || before < 40 || after < 40 {
		t.Errorf("%d discontinuities, %d frames before and %d after the gap; want 1, ~47, ~47", discs, before, after)
	}
}
