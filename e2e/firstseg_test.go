package e2e

import (
	"context"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/whipcast/whipcast/internal/whipclient"
)

// TestE2EShortFirstSegment: a publisher that answers keyframe requests (a
// browser) gets a first segment shorter than a second, cut at the keyframe
// the transmuxer asked for once one part was muxed, on HLS and DASH; a
// publisher that ignores them (OBS, 2 s GOP) gets the 2 s first segment it
// always had. Either way gohlslib plays the stream from that first segment
// on, and ffprobe decodes the first segment alone (init + segment) without a
// word, for as long as the playlist says.
func TestE2EShortFirstSegment(t *testing.T) {
	checkNoLeaks(t)
	for _, tc := range []struct {
		name     string
		answer   bool
		min, max float64 // the first segment's EXTINF, seconds
	}{
		// At least one 200 ms part; less than a second (the answer comes
		// one round trip and a frame after the request, on loopback).
		{"answers PLI", true, 0.2, 1.0},
		// The fixture's next keyframe, 2 s on, as without the feature.
		{"ignores PLI", false, 1.9, 2.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testShortFirstSegment(t, tc.answer, tc.min, tc.max)
		})
	}
}

func testShortFirstSegment(t *testing.T, answer bool, minDur, maxDur float64) {
	g := startGateway(t, "")
	base := "http://" + g.HTTPAddr().String()
	const stream = "e2e/first"
	hlsBase := base + "/hls/" + stream + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio,
		// A browser's sender ignores a PLI within 300 ms of the last.
		whipclient.Options{LoopbackOnly: true, AnswerPLI: answer, PLIThrottle: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	// The first media playlist: it comes with the first complete segment.
	var videoURL string
	waitFor(t, 10*time.Second, "the multivariant playlist", func() bool {
		code, mv := get(t, hlsBase+"index.m3u8")
		for _, u := range mediaPlaylists(mv) {
			if code == http.StatusOK && strings.Contains(u, "video") {
				videoURL = hlsBase + u
			}
		}
		return videoURL != ""
	})
	code, body := get(t, videoURL)
	if code != http.StatusOK {
		t.Fatalf("video playlist: %d", code)
	}
	pl, err := playlist.Unmarshal([]byte(body))
	if err != nil {
		t.Fatalf("video playlist does not parse: %v\n%s", err, body)
	}
	media, ok := pl.(*playlist.Media)
	if !ok || len(media.Segments) == 0 || media.Map == nil || media.MediaSequence != 0 {
		t.Fatalf("first video playlist:\n%s", body)
	}
	first := media.Segments[0]
	extinf := first.Duration.Seconds()
	t.Logf("first segment %s: EXTINF %.3f s (answer PLI: %v)", first.URI, extinf, answer)
	if extinf < minDur || extinf > maxDur {
		t.Errorf("first segment's EXTINF %.3f s, want %.1f–%.1f s", extinf, minDur, maxDur)
	}
	// EXT-X-TARGETDURATION stays the configured 2 s: a short segment does
	// not lower it, and every EXTINF is still within it.
	if media.TargetDuration != 2 {
		t.Errorf("EXT-X-TARGETDURATION %d, want 2", media.TargetDuration)
	}

	// gohlslib's LL-HLS client, opened now, plays from the live edge (its
	// preload hint) with only this short segment behind it.
	live := playHLS(t, hlsBase+"index.m3u8", 3*time.Second)
	if live.video == 0 || live.audio == 0 || live.nonMonotonic != "" {
		t.Errorf("gohlslib at the live edge: %d video, %d audio frames; %s", live.video, live.audio, live.nonMonotonic)
	}

	// ffprobe on the first segment alone: its init and its bytes.
	_, initData := get(t, hlsBase+media.Map.URI)
	_, segData := get(t, hlsBase+first.URI)
	file := filepath.Join(t.TempDir(), "first.mp4")
	if err := os.WriteFile(file, []byte(initData+segData), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runProbe(t, file, true)
	vcodec, _, vframes, vok := p.stream("video")
	if !vok || vcodec != "h264" {
		t.Fatalf("ffprobe of the first segment: %+v", p)
	}
	// 30 fps: the frames and the duration are the EXTINF's.
	if want := int(math.Round(extinf * 30)); vframes < want-1 || vframes > want+1 {
		t.Errorf("ffprobe decoded %d frames from the first segment, want %d (%.3f s at 30 fps)", vframes, want, extinf)
	}
	if d := p.duration(); math.Abs(d-extinf) > 0.05 {
		t.Errorf("ffprobe: first segment lasts %.3f s, the playlist says %.3f s", d, extinf)
	}
	if errs := ffmpegDecodeErrors(file); errs != "" {
		t.Errorf("ffmpeg decode of the first segment:\n%s", errs)
	}

	// DASH lists the same first segment.
	code, m := getMPD(t, base+"/dash/"+stream+"/manifest.mpd")
	if code != http.StatusOK {
		t.Fatalf("MPD: %d", code)
	}
	for i, as := range m.Periods[0].AdaptationSets {
		_, segs := m.segments(0, i)
		if len(segs) < 2 {
			t.Fatalf("%s: %d segments in the MPD", as.ContentType, len(segs))
		}
		d := float64(segs[0].d) / float64(as.Template.Timescale)
		t.Logf("DASH %s: first segment %.3f s", as.ContentType, d)
		// Audio is cut at the same stream times, to within one AAC frame.
		if math.Abs(d-extinf) > 0.03 {
			t.Errorf("DASH %s: first segment %.3f s, HLS says %.3f s", as.ContentType, d, extinf)
		}
	}

	// After the publish, gohlslib plays the whole stream from the start:
	// the short segment first, then every frame that was sent.
	stats, err := pub.Wait()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("WHIP DELETE: %v", err)
	}
	waitFor(t, 5*time.Second, "EXT-X-ENDLIST", func() bool {
		_, pl := get(t, videoURL)
		return strings.Contains(pl, "#EXT-X-ENDLIST")
	})
	var mu sync.Mutex
	var downloaded []string
	all := playHLSWith(t, &gohlslib.Client{
		URI: hlsBase + "index.m3u8",
		OnDownloadSegment: func(u string) {
			if strings.Contains(u, "/video_") && strings.HasSuffix(u, ".m4s") { // not the inits
				mu.Lock()
				downloaded = append(downloaded, u)
				mu.Unlock()
			}
		},
	}, 0)
	mu.Lock()
	if len(downloaded) == 0 || !strings.HasSuffix(downloaded[0], "/"+first.URI) {
		t.Errorf("gohlslib's video segment downloads: %v, want %s first", downloaded, first.URI)
	}
	mu.Unlock()
	if all.video != stats.VideoFrames || !all.firstVideoKey || all.audio == 0 || all.nonMonotonic != "" {
		t.Errorf("gohlslib from the start: %d of %d video frames sent, %d audio; first a keyframe: %v; %s",
			all.video, stats.VideoFrames, all.audio, all.firstVideoKey, all.nonMonotonic)
	}
	t.Logf("publisher got %d PLIs (%d within 300 ms of the last, ignored), skipped %d frames to answer; gohlslib played %d video, %d audio frames",
		stats.PLIs, stats.PLIsThrottled, stats.Skipped, all.video, all.audio)
}
