package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/web"
)

// TestE2ERestreamAPI adds an RTMP destination to a live stream through
// POST /v1/streams/{stream}/outputs, watches it go live on nginx-rtmp,
// removes it with DELETE, and checks what nginx recorded decodes; the
// Opus→AAC stage runs only while the destination exists.
func TestE2ERestreamAPI(t *testing.T) {
	n := startNginx(t)
	checkNoLeaks(t)
	const admin = "adm1n"
	g := startGateway(t, "auth:\n  admin_token: "+admin+"\naudio:\n  codec: opus\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		var rd bytes.Buffer
		if body != nil {
			_ = json.NewEncoder(&rd).Encode(body)
		}
		req, _ := http.NewRequestWithContext(ctx, method, base+path, &rd)
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}

	// The events socket reports the stream starting, an output failing (with
	// the error in words) and the stream ending.
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/v1/events?token="+admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	next := func(match func(web.Event) bool, what string) web.Event {
		t.Helper()
		for {
			rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
			_, b, err := ws.Read(rctx)
			rcancel()
			if err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			var e web.Event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if match(e) {
				return e
			}
		}
	}
	isType := func(typ string) func(web.Event) bool {
		return func(e web.Event) bool { return e.Type == typ && e.Stream == "api/rtmp" }
	}

	pub, err := whipclient.Publish(ctx, base+"/whip/api/rtmp", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	waitFor(t, 5*time.Second, "the stream to be live", func() bool { _, ok := g.Registry.Get("api/rtmp"); return ok })
	if n := g.AAC.Running(); n != 0 {
		t.Fatalf("%d transcodes before any AAC consumer (audio.codec: opus)", n)
	}
	next(isType("stream.started"), "stream.started")

	// A destination nobody listens on fails, and says so on the socket.
	dead := fmt.Sprintf("rtmp://127.0.0.1:%d/live/deadkey", freePort(t))
	code, out := call("POST", "/v1/streams/api/rtmp/outputs", map[string]any{"url": dead})
	if code != http.StatusCreated {
		t.Fatalf("add dead output: %d %v", code, out)
	}
	deadID, _ := out["id"].(string)
	ev := next(func(e web.Event) bool {
		return e.Type == "output.state" && e.Data["id"] == deadID && e.Data["state"] == "retrying"
	}, "output.state retrying of the dead destination")
	if msg, _ := ev.Data["error"].(string); msg == "" || strings.Contains(msg, "deadkey") || strings.Contains(ev.Data["url"].(string), "deadkey") {
		t.Errorf("output failure event: %v (want the error in words, the key as ****)", ev.Data)
	}
	t.Logf("output failure event: %v", ev.Data)
	if code, _ := call("DELETE", "/v1/streams/api/rtmp/outputs/"+deadID, nil); code != http.StatusNoContent {
		t.Fatalf("remove dead output: %d", code)
	}

	if code, out := call("POST", "/v1/streams/api/rtmp/outputs", map[string]any{"kind": "rtmp", "url": "http://nope/app/s3cret"}); code != http.StatusBadRequest || strings.Contains(out["error"].(string), "s3cret") {
		t.Fatalf("bad URL: %d %v, want 400 without the key", code, out)
	}
	code, out = call("POST", "/v1/streams/api/rtmp/outputs", map[string]any{"kind": "rtmp", "url": n.url("live/viaapi?key=s3cret")})
	if code != http.StatusCreated {
		t.Fatalf("add output: %d %v", code, out)
	}
	id, _ := out["id"].(string)
	if strings.Contains(out["url"].(string), "s3cret") {
		t.Fatalf("API shows the stream key: %v", out)
	}
	waitFor(t, 5*time.Second, "the API output live", func() bool {
		_, l := call("GET", "/v1/streams/api/rtmp/outputs", nil)
		outs, _ := l["outputs"].([]any)
		return len(outs) == 1 && outs[0].(map[string]any)["state"] == "live"
	})
	if n := g.AAC.Running(); n != 1 {
		t.Fatalf("%d transcodes with one RTMP destination, want 1", n)
	}
	time.Sleep(4 * time.Second) // let nginx record a few seconds
	if code, _ := call("DELETE", "/v1/streams/api/rtmp/outputs/"+id, nil); code != http.StatusNoContent {
		t.Fatalf("remove output: %d", code)
	}
	if code, _ := call("DELETE", "/v1/streams/api/rtmp/outputs/"+id, nil); code != http.StatusNotFound {
		t.Fatalf("remove it again: %d, want 404", code)
	}
	waitFor(t, 5*time.Second, "the transcode to stop with its last destination", func() bool { return g.AAC.Running() == 0 })
	pub.Close()
	next(isType("stream.ended"), "stream.ended")
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files, want 1", len(recs))
	}
	checkFLVRecording(t, recs[0], 2, fixtureSeconds-2)
}
