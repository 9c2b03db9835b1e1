package transmux

import (
	"context"
	"testing"

	"github.com/whipcast/whipcast/media"
)

// publisher feeds synth frames (30 fps, a keyframe every gop frames, audio
// beside) to m. With answer, a keyframe request makes the next video frame a
// keyframe, as a browser's encoder does; without, requests are only counted
// (OBS keeps its own keyframe interval).
type publisher struct {
	asks   []int // video frame index being written at each request
	answer bool
	cur    int
	want   bool
}

func (p *publisher) run(t *testing.T, set Settings, n, gop int) *recorder {
	t.Helper()
	fx := loadFixture(t)
	c := fx.VideoFrames[0].Config
	v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	rec := newRecorder(t)
	m, err := New(set, []*media.Track{v, a}, rec)
	if err != nil {
		t.Fatal(err)
	}
	m.SetKeyframeRequest(func() {
		p.asks = append(p.asks, p.cur)
		p.want = p.answer
	})
	for _, f := range synth(v, a, n, gop, func(int) *media.Config { return c }) {
		if f.Track == v {
			p.cur = int(f.DTS / 3000)
			if p.want {
				f.Keyframe, p.want = true, false
			}
		}
		if err := m.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	m.End(nil)
	return rec
}

func frames(s *Segment) int {
	n := 0
	for _, p := range s.Parts {
		n += p.Samples
	}
	return n
}

func TestShortFirstSegment(t *testing.T) {
	p := &publisher{answer: true}
	rec := p.run(t, Settings{}, 300, 60) // 10 s, 2 s GOP
	// Asked once, when frame 6 arrives: frames 0-5 (200 ms, one part) are
	// muxed. The answer, frame 7, cuts the first segment.
	if len(p.asks) != 1 || p.asks[0] != 6 {
		t.Fatalf("keyframe requests at frames %v, want one at 6", p.asks)
	}
	vs, as := rec.segments(media.KindVideo), rec.segments(media.KindAudio)
	if len(vs) < 4 || len(as) != len(vs) {
		t.Fatalf("%d video, %d audio segments", len(vs), len(as))
	}
	first := vs[0]
	if got := frames(first); got != 7 || first.Duration != 7*3000 {
		t.Fatalf("first segment: %d frames, duration %d; want 7 frames, 21000", got, first.Duration)
	}
	if !first.Short || !as[0].Short {
		t.Errorf("first segment not marked Short (video %v, audio %v)", first.Short, as[0].Short)
	}
	if len(first.Parts) != 2 || first.Parts[0].Duration != 6*3000 || !first.Parts[0].Independent {
		t.Errorf("first segment's parts: %d, first lasting %d", len(first.Parts), first.Parts[0].Duration)
	}
	samples := decodeSegment(t, first)
	if len(samples) != 7 || !samples[0].IsSync() {
		t.Fatalf("first segment decodes to %d samples, sync %v", len(samples), len(samples) > 0 && samples[0].IsSync())
	}
	// Audio covers the same time: 233 ms of 20 ms frames, give or take one.
	if d := as[0].Seconds(); d < 0.2 || d > 0.26 {
		t.Errorf("first audio segment lasts %.3f s", d)
	}
	// Then the normal rule: frame 7 to the file's keyframe at 60 (1.77 s is
	// past the 1.5 s cut), then 2 s GOPs.
	if vs[1].BaseMediaDecodeTime != 7*3000 || vs[1].Duration != 53*3000 || vs[1].Short {
		t.Errorf("second segment at %d for %d (short %v)", vs[1].BaseMediaDecodeTime, vs[1].Duration, vs[1].Short)
	}
	for _, s := range vs[2 : len(vs)-1] {
		if s.Duration != 60*3000 || s.Short {
			t.Errorf("segment %d lasts %d (short %v), want one 2 s GOP", s.MSN, s.Duration, s.Short)
		}
	}
}

// A publisher that ignores the request gets the same segments as with the
// feature off: its next keyframe, 2 s on, is past the normal cut too.
func TestFirstSegmentIgnored(t *testing.T) {
	p := &publisher{}
	got := p.run(t, Settings{}, 300, 60)
	if len(p.asks) != 1 {
		t.Fatalf("%d keyframe requests, want 1 (no second one)", len(p.asks))
	}
	off := &publisher{}
	want := off.run(t, Settings{FirstSegment: -1}, 300, 60)
	if len(off.asks) != 0 {
		t.Errorf("FirstSegment off: %d keyframe requests", len(off.asks))
	}
	if len(got.segs) != len(want.segs) {
		t.Fatalf("%d segments, %d with the feature off", len(got.segs), len(want.segs))
	}
	for i, s := range got.segs {
		w := want.segs[i]
		if s.BaseMediaDecodeTime != w.BaseMediaDecodeTime || s.Duration != w.Duration || s.Short {
			t.Errorf("segment %d (%v): at %d for %d, short %v; feature off: at %d for %d", s.MSN, s.Init.Track.Kind,
				s.BaseMediaDecodeTime, s.Duration, s.Short, w.BaseMediaDecodeTime, w.Duration)
		}
	}
	if vs := got.segments(media.KindVideo); vs[0].Duration != 60*3000 {
		t.Errorf("first segment lasts %d, want 2 s", vs[0].Duration)
	}
}

// A keyframe that comes on its own before the request point does not cut
// (the first segment keeps a whole part), and one at or after it cuts,
// asked for or not.
func TestFirstSegmentNaturalKeyframes(t *testing.T) {
	p := &publisher{}
	rec := p.run(t, Settings{}, 120, 4) // keyframes at 0, 133 ms, 267 ms...
	if len(p.asks) != 1 || p.asks[0] != 6 {
		t.Errorf("keyframe requests at frames %v, want one at 6", p.asks)
	}
	if vs := rec.segments(media.KindVideo); vs[0].Duration != 8*3000 || !vs[0].Short {
		t.Errorf("first segment lasts %d (short %v), want 8 frames, to the keyframe after 200 ms", vs[0].Duration, vs[0].Short)
	}

	p = &publisher{}
	rec = p.run(t, Settings{}, 120, 6) // a keyframe right at 200 ms
	if len(p.asks) != 0 {
		t.Errorf("keyframe requests at frames %v, want none: frame 6 cut first", p.asks)
	}
	vs := rec.segments(media.KindVideo)
	if vs[0].Duration != 6*3000 || !vs[0].Short {
		t.Errorf("first segment lasts %d (short %v), want 6 frames", vs[0].Duration, vs[0].Short)
	}
	// Then at least 1.5 s: the keyframe at 54 (frames 6..54, 1.6 s).
	if vs[1].Duration != 48*3000 || vs[1].Short {
		t.Errorf("second segment lasts %d (short %v)", vs[1].Duration, vs[1].Short)
	}
}

// Run asks the stream it reads (media.Stream.RequestKeyframe): once for the
// reader's subscription, once for the first segment.
func TestRunRequestsKeyframe(t *testing.T) {
	fx := loadFixture(t)
	asks := make(chan struct{}, 16)
	s := media.NewStream("live/k", fx.Tracks(), func() { asks <- struct{}{} })
	r := s.Subscribe("transmux", 2000)
	m, _ := New(Settings{}, s.Tracks, newRecorder(t))
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background(), r) }()
	for _, f := range fx.Frames {
		s.Write(f)
	}
	s.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(asks) != 2 {
		t.Fatalf("%d keyframe requests, want 2 (subscription, first segment)", len(asks))
	}
}
