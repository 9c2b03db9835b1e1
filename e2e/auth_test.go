package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
)

// TestE2EPublishToken checks auth.publish_token from the config file to the
// WHIP handler: no token 401, a wrong one 403, the right one publishes, and a
// second publisher on the live name gets 409.
func TestE2EPublishToken(t *testing.T) {
	checkNoLeaks(t)
	g := startGateway(t, "auth:\n  publish_token: s3cret\n")
	endpoint := "http://" + g.HTTPAddr().String() + "/whip/guarded"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// AnswerPLI: the HLS request below starts the packaging, which asks
	// for a keyframe, as a browser publisher would answer it.
	opts := whipclient.Options{LoopbackOnly: true, MaxDuration: 5 * time.Second, AnswerPLI: true}

	for token, want := range map[string]string{"": "401", "wrong": "403"} {
		if c, err := whipclient.Publish(ctx, endpoint, token, fixtureVideo, fixtureAudio, opts); err == nil {
			c.Close()
			t.Fatalf("publish with token %q accepted", token)
		} else if !strings.Contains(err.Error(), want) {
			t.Fatalf("publish with token %q: %v, want %s", token, err, want)
		}
	}
	if _, ok := g.Registry.Get("guarded"); ok {
		t.Fatal("a refused publish left a stream behind")
	}

	c, err := whipclient.Publish(ctx, endpoint, "s3cret", fixtureVideo, fixtureAudio, opts)
	if err != nil {
		t.Fatalf("publish with the right token: %v", err)
	}
	defer c.Close()
	if second, err := whipclient.Publish(ctx, endpoint, "s3cret", fixtureVideo, fixtureAudio, opts); err == nil {
		second.Close()
		t.Fatal("second publisher on a live name accepted")
	} else if !strings.Contains(err.Error(), "409") {
		t.Fatalf("second publisher: %v, want 409", err)
	}
	// Playback is open: only publishing needs the token. (Asked while the
	// stream is live: a stream nobody watched has no playlist after its end.)
	waitFor(t, 5*time.Second, "the stream live", func() bool { _, ok := g.Registry.Get("guarded"); return ok })
	if code, _ := get(t, "http://"+g.HTTPAddr().String()+"/hls/guarded/index.m3u8"); code != http.StatusOK {
		t.Fatalf("HLS of the published stream: %d", code)
	}
	stats, err := c.Wait()
	if err != nil || stats.VideoFrames == 0 {
		t.Fatalf("publish: %v, %d frames", err, stats.VideoFrames)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("WHIP DELETE: %v", err)
	}
}
