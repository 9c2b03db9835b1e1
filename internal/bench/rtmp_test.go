package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/rtmp"
)

func TestParseTags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		video bool
		body  []byte
		want  tagInfo
		ok    bool
	}{
		{"AVC sequence header", true, []byte{0x17, 0, 0, 0, 0, 1}, tagInfo{codec: "AVC", header: true, key: true}, true},
		{"AVC keyframe", true, []byte{0x17, 1, 0, 0, 0, 9}, tagInfo{codec: "AVC", key: true}, true},
		{"AVC inter frame", true, []byte{0x27, 1, 0, 0, 0}, tagInfo{codec: "AVC"}, true},
		{"AVC end of sequence", true, []byte{0x17, 2, 0, 0, 0}, tagInfo{codec: "AVC", header: true, key: true}, true},
		{"legacy Sorenson", true, []byte{0x22, 1}, tagInfo{codec: "video 2"}, true},
		{"E-RTMP HEVC sequence start", true, []byte{0x90, 'h', 'v', 'c', '1', 1}, tagInfo{codec: "hvc1", header: true, key: true}, true},
		{"E-RTMP AV1 coded frame", true, []byte{0xA1, 'a', 'v', '0', '1', 1}, tagInfo{codec: "av01"}, true},
		{"E-RTMP HEVC frames X", true, []byte{0x93, 'h', 'v', 'c', '1'}, tagInfo{codec: "hvc1", key: true}, true},
		{"E-RTMP metadata", true, []byte{0x94, 'h', 'v', 'c', '1'}, tagInfo{codec: "hvc1", header: true, key: true}, true},
		{"short video", true, []byte{0x17}, tagInfo{key: true}, false},
		{"short E-RTMP video", true, []byte{0x91, 'h'}, tagInfo{key: true}, false},
		{"empty video", true, nil, tagInfo{}, false},
		{"AAC config", false, []byte{0xAF, 0, 0x11, 0x90}, tagInfo{codec: "AAC", header: true}, true},
		{"AAC frame", false, []byte{0xAF, 1, 7}, tagInfo{codec: "AAC"}, true},
		{"E-RTMP Opus sequence start", false, []byte{0x90, 'O', 'p', 'u', 's', 'O'}, tagInfo{codec: "Opus", header: true}, true},
		{"E-RTMP Opus frame", false, []byte{0x91, 'O', 'p', 'u', 's', 0xfc}, tagInfo{codec: "Opus"}, true},
		{"MP3", false, []byte{0x2F, 0xff}, tagInfo{codec: "audio 2"}, true},
		{"short AAC", false, []byte{0xAF}, tagInfo{}, false},
		{"short E-RTMP audio", false, []byte{0x91, 'O', 'p'}, tagInfo{}, false},
	} {
		parse := parseAudioTag
		if tc.video {
			parse = parseVideoTag
		}
		got, ok := parse(tc.body)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("%s: %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestSinkStreamStats: frames counted apart from headers, a gap and a
// timestamp that goes back are found, the A/V start and the rates come
// from the timestamps and arrivals, and a lag that grows shows as drift.
func TestSinkStreamStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := &sinkStream{name: "s", publish: t0}
	vhdr := tagInfo{codec: "AVC", header: true}
	ahdr := tagInfo{codec: "AAC", header: true}
	s.add(trackVideo, 0, t0, vhdr, 40)
	s.add(trackAudio, 0, t0, ahdr, 4)
	// 10 s of 25 fps video and 50/s audio (40 ms / 20 ms steps), each frame
	// arriving 1 ms later per second of stream than its timestamp says.
	var vts, ats uint32
	arrive := func(ts uint32) time.Time {
		d := time.Duration(ts) * time.Millisecond
		return t0.Add(100*time.Millisecond + d + d/1000)
	}
	for vts < 10000 {
		for ats <= vts {
			s.add(trackAudio, ats+20, arrive(ats+20), tagInfo{codec: "AAC"}, 100)
			ats += 20
		}
		s.add(trackVideo, vts, arrive(vts), tagInfo{codec: "AVC", key: vts%2000 == 0}, 1000)
		vts += 40
		if vts == 4000 {
			vts += 400 // a 440 ms jump: one gap
		}
	}
	s.add(trackVideo, vts-100, arrive(vts), tagInfo{codec: "AVC"}, 1000) // goes back: not monotonic
	r := s.result()
	if r.videoCodec != "AVC" || r.audioCodec != "AAC" {
		t.Fatalf("codecs %q %q", r.videoCodec, r.audioCodec)
	}
	if r.videoFrames != 241 || r.audioFrames != 499 {
		t.Errorf("%d video, %d audio frames", r.videoFrames, r.audioFrames)
	}
	if r.gaps != 1 || r.nonMono != 1 {
		t.Errorf("%d gaps, %d not increasing", r.gaps, r.nonMono)
	}
	if !r.haveAV || r.avStart != 20*time.Millisecond {
		t.Errorf("A/V start %v %v, want +20ms", r.avStart, r.haveAV)
	}
	if !r.firstVideo.Equal(t0.Add(100*time.Millisecond)) || !r.firstAudio.Equal(arrive(20)) {
		t.Errorf("first video %v, first audio %v", r.firstVideo.Sub(t0), r.firstAudio.Sub(t0))
	}
	if r.bytes != 44+241*1000+499*100 {
		t.Errorf("%d bytes", r.bytes)
	}
	// Lag grows 1 ms per s: the last quarter's median is ~7.5 ms later
	// than the first quarter's (its median at ~1.25 s, the last's at ~8.75 s).
	if !r.haveDrift || r.drift < 7*time.Millisecond || r.drift > 8*time.Millisecond {
		t.Errorf("drift %v", r.drift)
	}
	if r.videoFPS < 23 || r.videoFPS > 25 || r.audioS < 49 || r.audioS > 51 {
		t.Errorf("rates: video %.2f/s, audio %.2f/s", r.videoFPS, r.audioS)
	}
	// The first frame (audio at 20 ms) came 20 µs later than the video
	// frame at 0 did, relative to their timestamps: lags count from that.
	if len(r.lags) != 740 || slices.Min(r.lags) != 0 || !r.haveStart || r.startLag != 20*time.Microsecond {
		t.Errorf("%d lags, least %v, start %v", len(r.lags), slices.Min(r.lags), r.startLag)
	}
	if _, ok := drift(make([]time.Duration, 7)); ok {
		t.Error("drift from 7 frames")
	}
}

// TestSummarizeRTMP: publishes are matched to publishers by name (the
// publish name, or the end of app/name), reconnects and strangers counted,
// and the report's JSON and table carry the figures.
func TestSummarizeRTMP(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := Config{N: 3, Duration: 10 * time.Second, FPS: 30, Phase: "spread", RTMPListen: "127.0.0.1:1935"}
	rs := []streamResult{
		{name: "bench0", connected: true, post: t0},
		{name: "x/bench1", connected: true, post: t0.Add(time.Second)},
		{name: "bench2", connected: true, post: t0.Add(2 * time.Second)}, // never pushed
	}
	mk := func(app, name string, pub time.Time, audio string) *sinkStream {
		s := &sinkStream{app: app, name: name, publish: pub}
		for i := range 20 {
			ts := uint32(i * 33)
			at := pub.Add(200*time.Millisecond + time.Duration(ts)*time.Millisecond)
			s.add(trackVideo, ts, at, tagInfo{codec: "AVC"}, 1000)
			s.add(trackAudio, ts, at, tagInfo{codec: audio}, 100)
		}
		return s
	}
	got := []*sinkStream{
		mk("live", "bench0", t0.Add(50*time.Millisecond), "AAC"),
		mk("live/x", "bench1", t0.Add(1150*time.Millisecond), "Opus"), // rtmp://h/live/x/bench1 split as go-rtmp sees it
		mk("live", "bench0", t0.Add(5*time.Second), "AAC"),            // a reconnect
		mk("live", "stranger", t0, "AAC"),
	}
	m := summarizeRTMP(c, rs, got)
	if m.Streams != 2 || m.Publishes != 4 || m.Reconnects != 1 {
		t.Fatalf("streams %d, publishes %d, reconnects %d", m.Streams, m.Publishes, m.Reconnects)
	}
	if m.Connect != (Summary{N: 2, P50: 50, P95: 150, Max: 150}) {
		t.Errorf("connect %+v", m.Connect)
	}
	if m.FirstVideo != (Summary{N: 2, P50: 250, P95: 350, Max: 350}) || m.FirstAudio.N != 2 {
		t.Errorf("first video %+v, audio %+v", m.FirstVideo, m.FirstAudio)
	}
	if m.VideoCodecs["AVC"] != 2 || m.AudioCodecs["AAC"] != 1 || m.AudioCodecs["Opus"] != 1 {
		t.Errorf("codecs %v %v", m.VideoCodecs, m.AudioCodecs)
	}
	if m.VideoFrames != 40 || m.AudioFrames != 40 || m.Gaps != 0 || m.NonMonotonic != 0 {
		t.Errorf("frames %d/%d, gaps %d, non-monotonic %d", m.VideoFrames, m.AudioFrames, m.Gaps, m.NonMonotonic)
	}
	if m.Lag.N != 80 || m.Lag.Max != 0 || m.AVStart != (Summary{N: 2}) || m.VideoFPS < 30 || m.VideoFPS > 30.5 {
		t.Errorf("lag %+v, A/V start %+v, video %.2f fps", m.Lag, m.AVStart, m.VideoFPS)
	}

	r := Report{N: 3, Connected: 3, Phase: "spread", RTMP: m}
	var out bytes.Buffer
	if err := r.writeJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.RTMP == nil || back.RTMP.Streams != 2 || back.RTMP.AudioCodecs["Opus"] != 1 {
		t.Fatalf("JSON %s: %v", out.String(), err)
	}
	out.Reset()
	if err := r.writeTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RTMP publish", "first RTMP video", "RTMP lag", "2 of 3 streams received (4 publishes, 1 reconnects)",
		"video AVC×2, audio AAC×1 Opus×1", "0 gaps over 250 ms, 0 not increasing"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := parseFlags([]string{"-rtmp-listen", "1935"}, &bytes.Buffer{}); !errors.Is(err, ErrUsage) {
		t.Errorf("-rtmp-listen 1935: %v, want ErrUsage", err)
	}
}

// TestRTMPSinkReceives: the project's own RTMP pusher publishes video and
// AAC to the sink through go-rtmp; the sink names the stream, reads the
// codecs, counts the frames apart from the sequence headers, and its
// drain ends when the pusher has gone.
func TestRTMPSinkReceives(t *testing.T) {
	sink, err := listenRTMP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecAAC, ClockRate: 48000, Channels: 2}
	src := media.NewStream("cam/one", []*media.Track{v, a}, nil)
	p, err := rtmp.New(src, rtmp.Settings{URL: "rtmp://" + sink.Addr().String() + "/live/cam/one"})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	cfg := &media.Config{SPS: []byte{0x67, 0x42, 0xC0, 0x1F}, PPS: []byte{0x68}}
	acfg := &media.Config{AudioSpecificConfig: []byte{0x11, 0x90}}
	const frames = 60
	for i := range int64(frames) {
		src.Write(&media.Frame{Track: v, DTS: i * 3000, PTS: i * 3000, Keyframe: i%30 == 0, Config: cfg, Data: []byte{0, 0, 0, 1, 0x65}})
		for j := range int64(2) {
			ts := (i*2 + j) * 800 // 16.7 ms: two per video frame, to keep the example short
			src.Write(&media.Frame{Track: a, DTS: ts, PTS: ts, Keyframe: true, Config: acfg, Data: []byte{0x21, 0}})
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Video is held until audio passes it: the last frames stay queued
	// until the stream ends, when the pusher stops.
	src.Close()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("pusher did not stop")
	}
	p.Close()
	sink.drain(5 * time.Second)
	s, more := match(sink.received(), "cam/one")
	if s == nil || more != 0 {
		t.Fatalf("received %d publishes, none named cam/one", len(sink.received()))
	}
	r := s.result()
	if r.videoCodec != "AVC" || r.audioCodec != "AAC" {
		t.Errorf("codecs %q %q", r.videoCodec, r.audioCodec)
	}
	if r.videoFrames < frames-5 || r.videoFrames > frames || r.audioFrames < 2*frames-10 || r.audioFrames > 2*frames {
		t.Errorf("%d video, %d audio frames of %d, %d", r.videoFrames, r.audioFrames, frames, 2*frames)
	}
	if r.nonMono != 0 || r.gaps != 0 || !r.haveAV || r.avStart != 0 {
		t.Errorf("timestamps: %d not increasing, %d gaps, A/V start %v", r.nonMono, r.gaps, r.avStart)
	}
}
