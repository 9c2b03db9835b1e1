// Package e2e runs the whole gateway in-process, exactly as cmd/whipcast
// wires it, publishes over WHIP with a real pion client and checks the output
// with independent readers (gohlslib's client and ffprobe). Run alone with
// `go test -race -run E2E ./e2e/`.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/stages/codec"
)

const (
	fixtureVideo = "../testdata/av.h264"
	fixtureAudio = "../testdata/av.ogg"
	// fixtureSeconds is the length of both fixture files.
	fixtureSeconds = 10.0
)

// startGateway runs a gateway on free loopback ports with cfgYAML laid over
// the default, and stops it when the test ends.
func startGateway(t *testing.T, cfgYAML string) *gateway.Gateway {
	t.Helper()
	doc := "http:\n  addr: 127.0.0.1:0\nwebrtc:\n  port: 0\n  listen_ip: 127.0.0.1\n"
	if !strings.Contains(cfgYAML, "reconnect_window") {
		// Tests of a stream's end want it when the publisher leaves; the
		// reconnect window has its own tests (reconnect_test.go).
		doc += "  reconnect_window: 0s\n"
	}
	doc += cfgYAML
	if !strings.Contains(cfgYAML, "limits:") {
		// The load checks of admission control would measure this test
		// process (publishers, readers, the race detector), not the
		// gateway: off, except in the tests of them (admission_test.go).
		// Every client of a test is on loopback, many of them at once
		// (the room soak's workers, the load tool), which the per-IP
		// request rate would read as one client: exempt, except in the
		// tests of it (limits_test.go).
		doc += "\nlimits:\n  max_cpu: 0\n  max_machine_cpu: 0\n  max_lag: 0s\n  rate:\n    exempt_loopback: true\n"
	}
	cfg, err := config.Load([]byte(doc), tempStorage(t, cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	g, err := gateway.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway stopped with: %v", err)
		}
	})
	return g
}

// tempStorage keeps recordings (the API may start them on any gateway) in
// the test's temporary directory when cfgYAML does not place them itself.
func tempStorage(t *testing.T, cfgYAML string) []string {
	if strings.Contains(cfgYAML, "storage:") {
		return nil
	}
	dir := t.TempDir()
	return []string{"WHIPCAST_STORAGE_PATH=" + dir + "/recordings", "WHIPCAST_STORAGE_SPOOL_DIR=" + dir + "/spool"}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// mediaPlaylists returns the media playlist URIs named by a multivariant
// playlist (EXT-X-STREAM-INF and EXT-X-MEDIA URIs).
func mediaPlaylists(mv string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(mv))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#EXT-X-MEDIA:") {
			if _, rest, ok := strings.Cut(l, `URI="`); ok {
				uri, _, _ := strings.Cut(rest, `"`)
				out = append(out, uri)
			}
		} else if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// TestE2EPublishWHIPPlayLLHLS is the foundation's end-to-end check: 10 s of
// H.264 + Opus over WHIP in, LL-HLS out, read by three independent readers.
// It runs twice side by side: with the default config (audio.codec aac: the
// Opus is transcoded to AAC-LC 48 kHz) and with audio.codec opus
// (passthrough).
func TestE2EPublishWHIPPlayLLHLS(t *testing.T) {
	checkNoLeaks(t)
	for _, tc := range []struct{ name, cfg, audio string }{
		{"default", "", defaultAudio()},
		{"opus", "audio: {codec: opus}\n", "opus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testPublishWHIPPlayLLHLS(t, tc.cfg, tc.audio)
		})
	}
}

// defaultAudio is the audio codec of HLS, DASH and recordings with the
// default config: aac, or opus in a nocodec build (passthrough fallback).
func defaultAudio() string {
	if codec.Available {
		return "aac"
	}
	return "opus"
}

// codecsString is the RFC 6381 codecs value of an audio codec in CMAF.
var codecsString = map[string]string{"aac": "mp4a.40.2", "opus": "opus"}

// testPublishWHIPPlayLLHLS publishes to a gateway configured with cfg and
// checks that the HLS output carries H.264 and audio (aac or opus).
func testPublishWHIPPlayLLHLS(t *testing.T, cfg, audio string) {
	g := startGateway(t, cfg)
	base := "http://" + g.HTTPAddr().String()
	const stream = "e2e/cam1"
	hlsURL := base + "/hls/" + stream + "/index.m3u8"

	if code, _ := get(t, hlsURL); code != http.StatusNotFound {
		t.Fatalf("HLS of an unpublished stream: %d, want 404", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	postAt := time.Now()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio,
		whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	// Time from WHIP POST to the first playable LL-HLS part and full segment.
	// (The first media playlist is served with the first complete segment:
	// gohlslib and ffmpeg refuse a playlist of parts alone.)
	var firstPart, firstSegment time.Duration
	var videoPlaylist string
	for firstSegment == 0 && ctx.Err() == nil {
		code, mv := get(t, hlsURL)
		if code == http.StatusOK && videoPlaylist == "" {
			for _, u := range mediaPlaylists(mv) {
				if strings.Contains(u, "video") {
					videoPlaylist = base + "/hls/" + stream + "/" + u
				}
			}
		}
		if videoPlaylist != "" {
			_, pl := get(t, videoPlaylist)
			if firstPart == 0 && strings.Contains(pl, "#EXT-X-PART:") {
				firstPart = time.Since(postAt)
			}
			if strings.Contains(pl, "#EXTINF:") {
				firstSegment = time.Since(postAt)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("WHIP POST → first LL-HLS part listed: %v; → first full segment listed: %v", firstPart, firstSegment)
	if videoPlaylist == "" {
		t.Fatal("multivariant playlist names no video playlist")
	}
	// RFC 8216bis 4.4.6.2: CODECS names every codec of the variant; Safari
	// picks its decoder from it.
	wantCodec := codecsString[audio]
	if _, mv := get(t, hlsURL); !regexp.MustCompile(`CODECS="avc1\.[0-9a-f]{6},` + regexp.QuoteMeta(wantCodec) + `"`).MatchString(mv) {
		t.Errorf("multivariant playlist: no CODECS=\"avc1.xxxxxx,%s\":\n%s", wantCodec, mv)
	}

	// Reader 1 while live: gohlslib's LL-HLS client from the live edge.
	live := playHLS(t, hlsURL, 4*time.Second)
	if live.video == 0 || live.audio == 0 {
		t.Fatalf("live client got %d video and %d audio frames", live.video, live.audio)
	}
	if !live.firstVideoKey {
		t.Fatal("live client: first video frame is not a keyframe")
	}
	if live.nonMonotonic != "" {
		t.Fatal("live client:", live.nonMonotonic)
	}
	if live.audioCodec != audio {
		t.Fatalf("live client: audio codec %q, want %q", live.audioCodec, audio)
	}

	stats, err := pub.Wait()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("WHIP DELETE: %v", err)
	}
	t.Logf("sent %d video frames, %d audio packets; publisher got %d PLIs", stats.VideoFrames, stats.AudioPackets, stats.PLIs)

	// The playlist ends once the publisher leaves.
	waitFor(t, 5*time.Second, "EXT-X-ENDLIST in the video playlist", func() bool {
		_, pl := get(t, videoPlaylist)
		return strings.Contains(pl, "#EXT-X-ENDLIST")
	})

	// Reader 2 after the end: the ended playlist holds the whole publish
	// (7 × 2 s window > 10 s), so every frame sent must be there.
	// Segments start at a video keyframe, so audio from before the first
	// keyframe is not packaged: the publisher starts both tracks at once,
	// but the first video frame can arrive a few tens of ms after the first
	// audio (it is much larger), so up to 3 Opus packets (60 ms) may precede
	// it; the ffprobe check below bounds the A/V start offset to 100 ms.
	all := playHLS(t, hlsURL, 0)
	if all.video != stats.VideoFrames {
		t.Errorf("HLS holds %d video frames; %d were sent", all.video, stats.VideoFrames)
	}
	switch audio {
	case "opus":
		// Passthrough: the very packets that were sent.
		if all.audio > stats.AudioPackets || all.audio < stats.AudioPackets-3 {
			t.Errorf("HLS holds %d Opus packets; %d were sent", all.audio, stats.AudioPackets)
		}
	case "aac":
		// AAC frames are 1024 samples, Opus packets 960: compare durations.
		// The AAC output may be longer by the encoder's priming frame and the
		// last partly filled frame, and shorter by the Opus before the first
		// keyframe; it must have no hole.
		sent := float64(stats.AudioPackets) * 0.020
		got := float64(all.audioSamples) / 48000
		if all.audioRate != 48000 || math.Abs(got-sent) > 0.1 {
			t.Errorf("HLS holds %.3f s of AAC at %d Hz; %.3f s of Opus were sent", got, all.audioRate, sent)
		}
		if all.audioGaps != 0 {
			t.Errorf("AAC has %d holes or overlaps between frames", all.audioGaps)
		}
		t.Logf("AAC: %d frames, %.3f s (Opus sent: %d packets, %.3f s)", all.audio, got, stats.AudioPackets, sent)
	}
	if !all.firstVideoKey {
		t.Error("first video frame of the recording is not a keyframe")
	}
	if all.nonMonotonic != "" {
		t.Error(all.nonMonotonic)
	}
	if all.width != 320 || all.height != 240 {
		t.Errorf("init segment's SPS says %dx%d, want 320x240", all.width, all.height)
	}

	// Reader 3: ffprobe on the playlist URL, decoding every frame.
	p := runProbe(t, hlsURL, true)
	vcodec, vstart, vframes, vok := p.stream("video")
	acodec, astart, aframes, aok := p.stream("audio")
	if !vok || !aok || vcodec != "h264" || acodec != audio {
		t.Fatalf("ffprobe codecs: video %q audio %q, want h264 and %s", vcodec, acodec, audio)
	}
	if d := p.duration(); math.Abs(d-fixtureSeconds) > 1 {
		t.Errorf("ffprobe duration %.3f s, want %.1f ± 1 s", d, fixtureSeconds)
	}
	if d := math.Abs(vstart - astart); d > 0.1 {
		t.Errorf("audio starts at %.3f s and video at %.3f s: %.0f ms apart, want ≤ 100 ms", astart, vstart, d*1000)
	}
	if vframes != stats.VideoFrames {
		t.Errorf("ffprobe decoded %d video frames, %d were sent", vframes, stats.VideoFrames)
	}
	t.Logf("ffprobe: h264 %d frames from %.3f s, %s %d frames from %.3f s (A/V start offset %+.0f ms), duration %s s",
		vframes, vstart, acodec, aframes, astart, (astart-vstart)*1000, p.Format.Duration)

	// No decode errors at all in the whole output.
	if errs := ffmpegDecodeErrors(hlsURL); errs != "" {
		t.Errorf("ffmpeg decode of the HLS output:\n%s", errs)
	}

	// The name is free again, and nothing is left running.
	if _, ok := g.Registry.Get(stream); ok {
		t.Error("stream still registered after the publisher left")
	}
}

// checkNoLeaks fails the test if goroutines started during it are still
// running a few seconds after every cleanup registered later (the gateway's
// shutdown among them) has run.
func checkNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// played is what the gohlslib client saw.
type played struct {
	video, audio int
	// firstVideoDTS and lastVideoDTS bound what the client got of video,
	// in videoClockRate ticks: the span it played, whatever the wall time
	// the machine gave it.
	firstVideoDTS, lastVideoDTS int64
	// videoJumps are the first few places where video DTS advanced by more
	// than two frames (at 30 fps): "from→to" in seconds.
	videoJumps     []string
	firstVideoKey  bool
	nonMonotonic   string
	width, height  int
	firstVideoPTS  int64
	firstAudioPTS  int64
	videoClockRate int
	audioClockRate int
	// audioCodec is "aac" or "opus"; audioRate the AAC sample rate.
	audioCodec string
	audioRate  int
	// audioSamples is the AAC duration in samples; audioGaps counts AAC
	// frames that do not start where the previous one ended.
	audioSamples int64
	audioGaps    int
}

// playHLS plays url with gohlslib's client until it has played d of both
// video and audio (stream time, not wall time: a busy machine gives the
// client less of the wall clock; 0: until the playlist ends) and counts what
// it decodes. The playlist ending stops it earlier; a bound of 2d+30 s of
// wall time stops a stream that never delivers, and the caller's counts
// then say what was missing.
func playHLS(t *testing.T, url string, d time.Duration) played {
	t.Helper()
	return playHLSWith(t, &gohlslib.Client{URI: url}, d)
}

// playHLSWith is playHLS with a client the caller set up (StartDistance,
// OnDownloadSegment...); the callbacks it leaves nil are quietened.
func playHLSWith(t *testing.T, c *gohlslib.Client, d time.Duration) played {
	t.Helper()
	var (
		mu           sync.Mutex
		res          played
		lastV, lastA int64 = math.MinInt64, math.MinInt64
	)
	// gohlslib logs every download by default.
	quiet := func(string) {}
	if c.OnDownloadPrimaryPlaylist == nil {
		c.OnDownloadPrimaryPlaylist = quiet
	}
	if c.OnDownloadStreamPlaylist == nil {
		c.OnDownloadStreamPlaylist = quiet
	}
	if c.OnDownloadSegment == nil {
		c.OnDownloadSegment = quiet
	}
	if c.OnDownloadPart == nil {
		c.OnDownloadPart = quiet
	}
	// enough is closed once both tracks have played d of stream time.
	enough := make(chan struct{})
	var lastAudioPTS int64
	checkEnough := func() { // under mu
		if d <= 0 || res.videoClockRate == 0 || res.audioClockRate == 0 || res.video == 0 || res.audio == 0 {
			return
		}
		v := time.Duration(res.lastVideoDTS-res.firstVideoDTS) * time.Second / time.Duration(res.videoClockRate)
		a := time.Duration(lastAudioPTS-res.firstAudioPTS) * time.Second / time.Duration(res.audioClockRate)
		if v >= d && a >= d {
			select {
			case <-enough:
			default:
				close(enough)
			}
		}
	}
	c.OnDecodeError = func(err error) { t.Errorf("gohlslib decode error: %v", err) }
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				res.videoClockRate = tr.ClockRate
				var sps h264.SPS
				if err := sps.Unmarshal(tr.Codec.(*codecs.H264).SPS); err != nil {
					t.Errorf("SPS in the init segment: %v", err)
				}
				res.width, res.height = sps.Width(), sps.Height()
				c.OnDataH26x(tr, func(pts, dts int64, au [][]byte) {
					mu.Lock()
					defer mu.Unlock()
					if res.video == 0 {
						res.firstVideoKey = h264.IsRandomAccess(au)
						res.firstVideoPTS = pts
						res.firstVideoDTS = dts
					}
					if res.video > 0 && res.videoClockRate > 0 && dts-lastV > int64(res.videoClockRate)/15 && len(res.videoJumps) < 10 {
						r := float64(res.videoClockRate)
						res.videoJumps = append(res.videoJumps, fmt.Sprintf("%.3f→%.3f", float64(lastV)/r, float64(dts)/r))
					}
					res.lastVideoDTS = dts
					if dts <= lastV && res.nonMonotonic == "" {
						res.nonMonotonic = fmt.Sprintf("video DTS %d after %d", dts, lastV)
					}
					lastV = dts
					res.video++
					checkEnough()
				})
			case *codecs.MPEG4Audio:
				res.audioClockRate = tr.ClockRate
				res.audioCodec = "aac"
				res.audioRate = tr.Codec.(*codecs.MPEG4Audio).Config.SampleRate
				var next int64
				c.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) {
					mu.Lock()
					defer mu.Unlock()
					if res.audio == 0 {
						res.firstAudioPTS = pts
					} else if pts != next {
						res.audioGaps++
					}
					if pts <= lastA && res.nonMonotonic == "" {
						res.nonMonotonic = fmt.Sprintf("audio PTS %d after %d", pts, lastA)
					}
					lastA = pts
					// AAC-LC frames are 1024 samples (ISO/IEC 14496-3 4.5.2.1).
					n := int64(len(aus)) * 1024 * int64(tr.ClockRate) / int64(max(res.audioRate, 1))
					next = pts + n
					res.audioSamples += int64(len(aus)) * 1024
					res.audio += len(aus)
					lastAudioPTS = pts
					checkEnough()
				})
			case *codecs.Opus:
				res.audioClockRate = tr.ClockRate
				res.audioCodec = "opus"
				c.OnDataOpus(tr, func(pts int64, packets [][]byte) {
					mu.Lock()
					defer mu.Unlock()
					if res.audio == 0 {
						res.firstAudioPTS = pts
					}
					if pts <= lastA && res.nonMonotonic == "" {
						res.nonMonotonic = fmt.Sprintf("audio PTS %d after %d", pts, lastA)
					}
					lastA = pts
					res.audio += len(packets)
					lastAudioPTS = pts
					checkEnough()
				})
			default:
				t.Errorf("unexpected track codec %T", tr.Codec)
			}
		}
		return nil
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait2() }()
	var err error
	limit := 2*d + 30*time.Second
	select {
	case err = <-waitErr:
	case <-enough:
		c.Close()
		<-waitErr
	case <-time.After(limit):
		if d == 0 {
			err = errors.New("playlist did not end within 30 s")
		} else {
			t.Logf("gohlslib client: not %v of video and audio within %v of wall time", d, limit)
		}
		c.Close()
		<-waitErr
	}
	c.Close()
	if err != nil && !strings.Contains(err.Error(), "terminated") && !strings.Contains(err.Error(), "end of stream") {
		t.Fatalf("gohlslib client: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
