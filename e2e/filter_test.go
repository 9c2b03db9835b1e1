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

// TestE2EFilterRuleLimit: a stream rule filters every stream it matches,
// each stage started by a registry consumer off the publisher's goroutine.
// Past filters.max_stages the next stream runs unfiltered, as a user would
// see it: a filter.failed event naming the limit, the consumer's failure
// in /metrics, the stream itself live and playable.
func TestE2EFilterRuleLimit(t *testing.T) {
	if !codec.Available {
		t.Skip("no codec support in this build")
	}
	checkNoLeaks(t)
	g := startGateway(t, "filters:\n  max_stages: 1\nstreams:\n  - match: \"lim/*\"\n    filters: [{rotate: 90}]\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	es := dialEvents(t, ctx, base)
	first, err := whipclient.Publish(ctx, base+"/whip/lim/a", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	waitFor(t, 10*time.Second, "lim/a/filtered", func() bool {
		_, ok := g.Registry.Get("lim/a/filtered")
		return ok && g.Filters.Running() == 1
	})
	second, err := whipclient.Publish(ctx, base+"/whip/lim/b", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	e := es.next("filter.failed")
	if msg, _ := e.Data["error"].(string); e.Stream != "lim/b" || !strings.Contains(msg, "filters.max_stages") {
		t.Errorf("filter.failed for %q: %v, want lim/b past filters.max_stages", e.Stream, e.Data)
	}
	waitFor(t, 10*time.Second, "the filter consumer's failure in /metrics", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, `whipcast_consumer_errors_total{consumer="filter"} 1`)
	})
	if _, ok := g.Registry.Get("lim/b/filtered"); ok || g.Filters.Running() != 1 {
		t.Errorf("lim/b filtered past the limit (%d stages running)", g.Filters.Running())
	}
	var media string
	waitFor(t, 15*time.Second, "lim/b's own HLS", func() bool {
		code, body := get(t, base+"/hls/lim/b/index.m3u8")
		if pl := mediaPlaylists(body); code == 200 && len(pl) > 0 {
			media = pl[0]
			return true
		}
		return false
	})
	t.Logf("lim/b unfiltered, playlist %s; filter.failed: %v", media, e.Data)
}
