package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/web"
)

// TestE2EMotionEvents publishes the moving test pattern with a motion rule:
// motion.start arrives on the events socket soon after the publish, with a
// score, and motion.stop when the stream ends.
func TestE2EMotionEvents(t *testing.T) {
	if !codec.Available {
		t.Skip("no codec support in this build")
	}
	checkNoLeaks(t)
	g := startGateway(t, "streams:\n  - match: \"e2e/*\"\n    motion: {sensitivity: 0.5}\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	next := func(want string, d time.Duration) web.Event {
		t.Helper()
		for {
			rctx, rcancel := context.WithTimeout(ctx, d)
			_, b, err := ws.Read(rctx)
			rcancel()
			if err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			var e web.Event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if e.Type == want {
				return e
			}
		}
	}
	postAt := time.Now()
	pub, err := whipclient.Publish(ctx, base+"/whip/e2e/motion", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	e := next("motion.start", 10*time.Second)
	score, _ := e.Data["score"].(float64)
	t.Logf("motion.start %v after the WHIP POST, score %.4f", time.Since(postAt), score)
	if e.Stream != "e2e/motion" || score <= 0 {
		t.Fatalf("motion.start %+v", e)
	}
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	if e := next("motion.stop", 10*time.Second); e.Stream != "e2e/motion" {
		t.Fatalf("motion.stop %+v", e)
	}
}
