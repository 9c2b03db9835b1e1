package e2e

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/stages/codec"
)

// TestE2EFilterRotate publishes over WHIP with a rotate: 90 rule and reads
// {stream}/filtered back with ffprobe: H.264 at 240x320, about as long as
// the fixture; the source stream stays 320x240.
func TestE2EFilterRotate(t *testing.T) {
	if !codec.Available {
		t.Skip("no codec support in this build")
	}
	checkNoLeaks(t)
	// The filtered stream is read after its end: packaged from its start.
	g := startGateway(t, "hls:\n  always: true\nstreams:\n  - match: \"e2e/*\"\n    filters: [{rotate: 90}, {gain: 1.5}]\n")
	base := "http://" + g.HTTPAddr().String()
	const stream = "e2e/rot"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	waitFor(t, 5*time.Second, "the filtered stream", func() bool {
		_, ok := g.Registry.Get(stream + "/filtered")
		return ok && g.Filters.Running() == 1
	})
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	hlsURL := base + "/hls/" + stream + "/filtered/index.m3u8"
	var videoPlaylist string
	waitFor(t, 10*time.Second, "EXT-X-ENDLIST in the filtered video playlist", func() bool {
		_, mv := get(t, hlsURL)
		for _, u := range mediaPlaylists(mv) {
			if strings.Contains(u, "video") {
				videoPlaylist = base + "/hls/" + stream + "/filtered/" + u
			}
		}
		if videoPlaylist == "" {
			return false
		}
		_, pl := get(t, videoPlaylist)
		return strings.Contains(pl, "#EXT-X-ENDLIST")
	})
	p := runProbe(t, hlsURL, false)
	var ok, audio bool
	for _, s := range p.Streams {
		audio = audio || s.CodecType == "audio"
		if s.CodecType == "video" {
			ok = true
			if s.CodecName != "h264" || s.Width != 240 || s.Height != 320 {
				t.Errorf("filtered video: %s %dx%d, want h264 240x320", s.CodecName, s.Width, s.Height)
			}
		}
	}
	if !ok || !audio {
		t.Fatalf("filtered HLS: video %v, audio (gain 1.5) %v; want both", ok, audio)
	}
	if d := p.duration(); math.Abs(d-fixtureSeconds) > 1.5 {
		t.Errorf("filtered duration %.2f s, want ≈ %.0f s", d, fixtureSeconds)
	}
	src := runProbe(t, base+"/hls/"+stream+"/index.m3u8", false)
	for _, s := range src.Streams {
		if s.CodecType == "video" && (s.Width != 320 || s.Height != 240) {
			t.Errorf("source video %dx%d, want 320x240 unchanged", s.Width, s.Height)
		}
	}
	waitFor(t, 5*time.Second, "the filter stage to stop", func() bool { return g.Filters.Running() == 0 })
}
