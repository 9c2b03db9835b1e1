package transmux

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// recorder is a Sink that keeps everything, checking the call order.
type recorder struct {
	t        testing.TB
	inits    []*Init
	parts    []*Part
	segs     []*Segment
	ended    bool
	endErr   error
	curInit  map[*media.Track]*Init
	pendPart map[*media.Track][]*Part
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, curInit: map[*media.Track]*Init{}, pendPart: map[*media.Track][]*Part{}}
}

func (r *recorder) OnInit(in *Init) {
	r.inits = append(r.inits, in)
	r.curInit[in.Track] = in
}

func (r *recorder) OnPart(p *Part) {
	if r.curInit[p.Init.Track] != p.Init {
		r.t.Errorf("part %d.%d uses an init that is not current", p.MSN, p.Index)
	}
	r.parts = append(r.parts, p)
	r.pendPart[p.Init.Track] = append(r.pendPart[p.Init.Track], p)
}

func (r *recorder) OnSegment(s *Segment) {
	got := r.pendPart[s.Init.Track]
	if len(got) != len(s.Parts) {
		r.t.Errorf("segment %d: %d parts announced, %d in segment", s.MSN, len(got), len(s.Parts))
	}
	r.pendPart[s.Init.Track] = nil
	r.segs = append(r.segs, s)
}

func (r *recorder) OnEnd(err error) {
	if r.ended {
		r.t.Error("OnEnd twice")
	}
	r.ended, r.endErr = true, err
}

func (r *recorder) segments(k media.Kind) []*Segment {
	var out []*Segment
	for _, s := range r.segs {
		if s.Init.Track.Kind == k {
			out = append(out, s)
		}
	}
	return out
}

func loadFixture(t testing.TB) *transmuxtest.Fixture {
	t.Helper()
	fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/av.ogg", time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// decodeSegment parses init+segment with mp4ff and returns its samples.
func decodeSegment(t *testing.T, s *Segment) []mp4.FullSample {
	t.Helper()
	var buf bytes.Buffer
	buf.Write(s.Init.Data)
	if n, err := s.WriteTo(&buf); err != nil || n != s.Size {
		t.Fatalf("segment %d: wrote %d of %d: %v", s.MSN, n, s.Size, err)
	}
	f, err := mp4.DecodeFile(&buf)
	if err != nil {
		t.Fatalf("segment %d: decode: %v", s.MSN, err)
	}
	if f.Init == nil {
		t.Fatalf("segment %d: no init", s.MSN)
	}
	trex := f.Init.Moov.Mvex.Trex
	var out []mp4.FullSample
	nfrag := 0
	for _, ms := range f.Segments {
		for _, fr := range ms.Fragments {
			nfrag++
			fs, err := fr.GetFullSamples(trex)
			if err != nil {
				t.Fatalf("segment %d: samples: %v", s.MSN, err)
			}
			out = append(out, fs...)
		}
	}
	if nfrag != len(s.Parts) {
		t.Fatalf("segment %d: %d fragments, %d parts", s.MSN, nfrag, len(s.Parts))
	}
	return out
}

func TestInitSegments(t *testing.T) {
	fx := loadFixture(t)
	rec := newRecorder(t)
	m, err := New(Settings{}, fx.Tracks(), rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx.Frames[:40] {
		if err := m.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.inits) != 2 {
		t.Fatalf("%d inits", len(rec.inits))
	}
	v, a := rec.inits[0], rec.inits[1]
	if v.Codec != "avc1.42c01f" && v.Codec[:7] != "avc1.42" {
		t.Errorf("video codec %q", v.Codec)
	}
	if v.Codec != "avc1."+hexOf(fx.VideoFrames[0].Config.SPS[1:4]) {
		t.Errorf("video codec %q does not match the SPS", v.Codec)
	}
	if a.Codec != "opus" || a.Timescale != 48000 || v.Timescale != 90000 || v.Width != 320 || v.Height != 240 {
		t.Errorf("init fields: %+v %+v", *v, *a)
	}
	for _, in := range rec.inits {
		f, err := mp4.DecodeFile(bytes.NewReader(in.Data))
		if err != nil || f.Init == nil {
			t.Fatalf("%s init: %v", in.Codec, err)
		}
		if len(f.Init.Moov.Traks) != 1 {
			t.Fatalf("%s init: %d traks", in.Codec, len(f.Init.Moov.Traks))
		}
		trak := f.Init.Moov.Trak
		if trak.Mdia.Mdhd.Timescale != in.Timescale {
			t.Errorf("%s: mdhd timescale %d", in.Codec, trak.Mdia.Mdhd.Timescale)
		}
		stsd := trak.Mdia.Minf.Stbl.Stsd
		switch in.Codec {
		case "opus":
			if stsd.Opus == nil || stsd.Opus.Dops == nil || stsd.Opus.Dops.InputSampleRate != 48000 || stsd.Opus.ChannelCount != 2 {
				t.Errorf("opus sample entry: %+v", stsd.Opus)
			}
		default:
			if stsd.AvcX == nil || stsd.AvcX.Type() != "avc1" || stsd.AvcX.AvcC == nil || stsd.AvcX.Width != 320 {
				t.Errorf("avc1 sample entry: %+v", stsd.AvcX)
			}
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestFixtureSegments(t *testing.T) {
	fx := loadFixture(t)
	rec := newRecorder(t)
	m, err := New(Settings{}, fx.Tracks(), rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx.Frames {
		if err := m.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	m.End(nil)
	if !rec.ended || rec.endErr != nil {
		t.Fatalf("end: %v %v", rec.ended, rec.endErr)
	}
	for _, k := range []media.Kind{media.KindVideo, media.KindAudio} {
		segs := rec.segments(k)
		if len(segs) != 5 {
			t.Fatalf("%v: %d segments", k, len(segs))
		}
		var next uint64
		total := 0
		for i, s := range segs {
			if s.MSN != uint64(i) {
				t.Errorf("%v seg %d: MSN %d", k, i, s.MSN)
			}
			if s.Time.IsZero() {
				t.Errorf("%v seg %d: no wall time", k, i)
			}
			if d := s.Seconds(); math.Abs(d-2) > 0.03 {
				t.Errorf("%v seg %d: %.3f s", k, i, d)
			}
			samples := decodeSegment(t, s)
			if !samples[0].IsSync() {
				t.Errorf("%v seg %d: first sample not sync", k, i)
			}
			if i > 0 && samples[0].DecodeTime != next {
				t.Errorf("%v seg %d: starts at %d, previous ended at %d", k, i, samples[0].DecodeTime, next)
			}
			if s.BaseMediaDecodeTime != samples[0].DecodeTime {
				t.Errorf("%v seg %d: bmdt %d, tfdt %d", k, i, s.BaseMediaDecodeTime, samples[0].DecodeTime)
			}
			var dur uint64
			for j, smp := range samples {
				dur += uint64(smp.Dur)
				if k == media.KindVideo && smp.IsSync() != (j == 0) {
					t.Errorf("video seg %d sample %d: sync %v", i, j, smp.IsSync())
				}
			}
			if dur != s.Duration {
				t.Errorf("%v seg %d: samples last %d, segment says %d", k, i, dur, s.Duration)
			}
			next = samples[0].DecodeTime + dur
			total += len(samples)
			for j, p := range s.Parts {
				if p.Index != j || p.MSN != s.MSN {
					t.Errorf("%v seg %d part %d: says %d.%d", k, i, j, p.MSN, p.Index)
				}
				if k == media.KindVideo && p.Seconds() > 0.2+1e-9 {
					t.Errorf("video part %d.%d: %.3f s > part target", p.MSN, j, p.Seconds())
				}
				if p.Independent != (k == media.KindAudio || j == 0) {
					t.Errorf("%v part %d.%d: independent %v", k, p.MSN, j, p.Independent)
				}
			}
		}
		want := len(fx.VideoFrames)
		if k == media.KindAudio {
			want = len(fx.AudioFrames)
		}
		if total != want {
			t.Errorf("%v: %d samples muxed, %d written", k, total, want)
		}
	}
	// Same MSN, same time range: audio starts within one audio frame of video.
	vs, as := rec.segments(media.KindVideo), rec.segments(media.KindAudio)
	for i := range vs {
		vt := float64(vs[i].BaseMediaDecodeTime) / 90000
		at := float64(as[i].BaseMediaDecodeTime) / 48000
		if math.Abs(vt-at) > 0.021 {
			t.Errorf("seg %d: video at %.3f, audio at %.3f", i, vt, at)
		}
	}
}

func TestZeroCopy(t *testing.T) {
	fx := loadFixture(t)
	rec := newRecorder(t)
	m, _ := New(Settings{}, fx.Tracks(), rec)
	for _, f := range fx.Frames[:100] {
		_ = m.WriteFrame(f)
	}
	p := rec.parts[0]
	if &p.Payload[0][0] != &fx.VideoFrames[0].Data[0] {
		t.Fatal("part payload is a copy of the frame data")
	}
}

// synth makes n video frames at 30 fps with a keyframe every gop frames and
// 20 ms audio frames for the same span, interleaved.
func synth(v, a *media.Track, n, gop int, cfgAt func(i int) *media.Config) []*media.Frame {
	var out []*media.Frame
	base := time.Unix(1_700_000_000, 0)
	ai := 0
	for i := range n {
		dts := int64(i) * 3000
		for a != nil && int64(ai)*960*90000 <= dts*48000 {
			adts := int64(ai) * 960
			out = append(out, &media.Frame{Track: a, DTS: adts, PTS: adts, Keyframe: true, Data: []byte{0xfc, byte(ai)}, Time: base.Add(time.Duration(adts) * time.Second / 48000)})
			ai++
		}
		key := i%gop == 0
		out = append(out, &media.Frame{
			Track: v, DTS: dts, PTS: dts, Keyframe: key, Config: cfgAt(i),
			Data: []byte{0, 0, 0, 2, 0x65, byte(i)},
			Time: base.Add(time.Duration(dts) * time.Second / 90000),
		})
	}
	return out
}

func TestConfigChangeDiscontinuity(t *testing.T) {
	fx := loadFixture(t)
	sps := fx.VideoFrames[0].Config.SPS
	c1 := &media.Config{SPS: sps, PPS: fx.VideoFrames[0].Config.PPS, Width: 320, Height: 240}
	c2 := &media.Config{SPS: sps, PPS: c1.PPS, Width: 320, Height: 240} // new pointer = change
	v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	frames := synth(v, a, 200, 30, func(i int) *media.Config {
		if i >= 90 {
			return c2
		}
		return c1
	})
	rec := newRecorder(t)
	m, _ := New(Settings{}, []*media.Track{v, a}, rec)
	for _, f := range frames {
		_ = m.WriteFrame(f)
	}
	m.End(nil)
	if len(rec.inits) != 3 || rec.inits[2].Version != 1 || rec.inits[2].Track != v {
		t.Fatalf("inits: %d", len(rec.inits))
	}
	for _, k := range []media.Kind{media.KindVideo, media.KindAudio} {
		var discs []uint64
		for _, s := range rec.segments(k) {
			if s.Discontinuity {
				discs = append(discs, s.MSN)
			}
		}
		// GOP 1 s, target 2 s: segments at 0, 60; the change at 90 cuts early.
		if len(discs) != 1 || discs[0] != 2 {
			t.Errorf("%v: discontinuities at %v", k, discs)
		}
	}
	for _, s := range rec.segments(media.KindVideo) {
		if (s.MSN >= 2) != (s.Init.Version == 1) {
			t.Errorf("video seg %d uses init v%d", s.MSN, s.Init.Version)
		}
	}
}

func TestWaitsForKeyframeAndAudioAlone(t *testing.T) {
	v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	fx := loadFixture(t)
	cfg := fx.VideoFrames[0].Config
	frames := synth(v, nil, 100, 45, func(int) *media.Config { return cfg })
	rec := newRecorder(t)
	m, _ := New(Settings{}, []*media.Track{v}, rec)
	for _, f := range frames[5:] { // starts mid-GOP: wait for frame 45
		_ = m.WriteFrame(f)
	}
	m.End(nil)
	if len(rec.parts) == 0 || rec.parts[0].BaseMediaDecodeTime != 45*3000 {
		t.Fatalf("first part: %+v", rec.parts)
	}

	a := &media.Track{ID: 0, Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	rec = newRecorder(t)
	m, err := New(Settings{}, []*media.Track{a}, rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx.AudioFrames {
		f2 := *f
		f2.Track = a
		_ = m.WriteFrame(&f2)
	}
	m.End(nil)
	// 2 s of 20 ms frames per segment; the rest in a short last one.
	if want := (len(fx.AudioFrames) + 99) / 100; len(rec.segs) != want {
		t.Fatalf("audio only: %d segments for %d frames", len(rec.segs), len(fx.AudioFrames))
	}
}

func TestRunStream(t *testing.T) {
	fx := loadFixture(t)
	s := media.NewStream("live/x", fx.Tracks(), nil)
	r := s.Subscribe("transmux", 2000)
	rec := newRecorder(t)
	m, _ := New(Settings{}, s.Tracks, rec)
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background(), r) }()
	for _, f := range fx.Frames {
		s.Write(f)
	}
	s.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !rec.ended || len(rec.segments(media.KindVideo)) != 5 {
		t.Fatalf("ended %v, %d segments", rec.ended, len(rec.segs))
	}

	// Cancel stops Run, flushes and reports why.
	s2 := media.NewStream("live/y", fx.Tracks(), nil)
	r2 := s2.Subscribe("transmux", 0)
	rec2 := newRecorder(t)
	m2, _ := New(Settings{}, s2.Tracks, rec2)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- m2.Run(ctx, r2) }()
	for _, f := range fx.Frames[:100] {
		s2.Write(f)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(rec2.endErr, context.Canceled) {
		t.Fatalf("run after cancel: %v / %v", err, rec2.endErr)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Settings{}, nil, newRecorder(t)); !errors.Is(err, ErrNoTracks) {
		t.Fatal(err)
	}
	bad := &media.Track{Kind: media.KindVideo, Codec: media.Codec(99)}
	if _, err := New(Settings{}, []*media.Track{bad}, newRecorder(t)); !errors.Is(err, ErrNoTracks) {
		t.Fatal(err)
	}
	s := Settings{}
	_ = s.withDefaults()
	if s != (Settings{}) {
		t.Fatal("defaults written back")
	}
}

// TestDiscontinuityWithoutConfigChange: a resumed publish (Frame.Discontinuity
// on the first frame of each track, same codec configuration) cuts a new
// segment at once, marks it on every track, keeps the init and keeps the
// timeline going; the frame before it keeps its usual duration rather than
// spanning the publisher's absence.
func TestDiscontinuityWithoutConfigChange(t *testing.T) {
	fx := loadFixture(t)
	c := &media.Config{SPS: fx.VideoFrames[0].Config.SPS, PPS: fx.VideoFrames[0].Config.PPS, Width: 320, Height: 240}
	v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	frames := synth(v, a, 200, 30, func(int) *media.Config { return c })
	// Frame 100 is a keyframe 0.33 s into a GOP-aligned segment (60..): the
	// publisher "reconnects" there, 1 s later on the timeline.
	const at, gapV, gapA = 100, 90000, 48000
	var out []*media.Frame
	seenV, seenA := false, false
	for _, f := range frames {
		g := *f
		if g.Track == v && g.DTS >= at*3000 || g.Track == a && g.DTS*90000 >= at*3000*48000 {
			if g.Track == v {
				g.DTS += gapV
				g.PTS += gapV
				if !seenV {
					g.Discontinuity, g.Keyframe, seenV = true, true, true
				}
			} else {
				g.DTS += gapA
				g.PTS += gapA
				if !seenA {
					g.Discontinuity, seenA = true, true
				}
			}
		}
		out = append(out, &g)
	}
	rec := newRecorder(t)
	// The normal rule for the first segment too, so the cuts fall at the
	// frames named below (the short first segment has its own tests).
	m, _ := New(Settings{FirstSegment: -1}, []*media.Track{v, a}, rec)
	for _, f := range out {
		_ = m.WriteFrame(f)
	}
	m.End(nil)
	if len(rec.inits) != 2 {
		t.Fatalf("%d inits, want 2 (no new init without a config change)", len(rec.inits))
	}
	for _, k := range []media.Kind{media.KindVideo, media.KindAudio} {
		var discs []uint64
		var prevEnd uint64
		for _, s := range rec.segments(k) {
			if s.Discontinuity {
				discs = append(discs, s.MSN)
				if len(s.Parts) == 0 || !s.Parts[0].Discontinuity {
					t.Errorf("%v: segment %d's first part is not marked", k, s.MSN)
				}
			}
			if s.Init.Version != 0 {
				t.Errorf("%v: segment %d uses init v%d", k, s.MSN, s.Init.Version)
			}
			if s.MSN > 0 && !s.Discontinuity && s.BaseMediaDecodeTime != prevEnd {
				t.Errorf("%v: segment %d starts at %d, previous ended at %d", k, s.MSN, s.BaseMediaDecodeTime, prevEnd)
			}
			prevEnd = s.BaseMediaDecodeTime + s.Duration
		}
		if len(discs) != 1 || discs[0] != 2 {
			t.Errorf("%v: discontinuities at %v, want [2] (segments 0, 1 at frames 0, 60; then the cut at 100)", k, discs)
		}
	}
	vs := rec.segments(media.KindVideo)
	if len(vs) < 3 {
		t.Fatalf("%d video segments", len(vs))
	}
	if got, want := vs[1].Duration, uint64(40*3000); got != want {
		t.Errorf("segment before the discontinuity lasts %d, want %d (40 frames, not the absence)", got, want)
	}
	if got, want := vs[2].BaseMediaDecodeTime, uint64(at*3000+gapV); got != want {
		t.Errorf("segment after the discontinuity starts at %d, want %d (timestamps go on)", got, want)
	}
}
