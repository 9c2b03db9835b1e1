package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/web"
)

// iceRestartResult is what browser/icerestart.mjs prints.
type iceRestartResult struct {
	OK    bool `json:"ok"`
	Steps []struct {
		Name string `json:"name"`
		Pub  struct {
			Local, Remote, State string
		} `json:"pub"`
		View struct {
			Local, Remote, State string
		} `json:"view"`
		FramesSent    int     `json:"framesSent"`
		FramesDecoded int     `json:"framesDecoded"`
		CurrentTime   float64 `json:"currentTime"`
	} `json:"steps"`
	Requests []struct {
		Method  string  `json:"method"`
		URL     string  `json:"url"`
		Status  int     `json:"status"`
		IfMatch *string `json:"ifMatch"`
		ETag    *string `json:"etag"`
	} `json:"requests"`
	Error *string `json:"error"`
}

// TestE2EBrowserICERestart: medooze's whip-whep client (an independent
// implementation, by RFC 9725's author) in headless Chromium publishes with
// trickle ICE and plays the stream back over WHEP; it restarts ICE on the
// publisher while the viewer plays, then on the viewer. Asserted as a user
// would see it: each restart is answered 200 with new gateway credentials
// that the browser applies (its remote ice-ufrag changes) and a new ETag;
// the viewer's video keeps decoding and its currentTime keeps advancing
// after each; the gateway kept one stream the whole time (one
// stream.started, no stream.ended until the stop, no resume); stop's
// DELETEs answer 200.
func TestE2EBrowserICERestart(t *testing.T) {
	node := needBrowser(t)
	if _, err := os.Stat("browser/node_modules/whip-whep/whip.js"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("e2e/browser/node_modules/whip-whep is missing (npm ci in e2e/browser)")
		}
		t.Skip("whip-whep is missing: npm ci in e2e/browser")
	}
	checkNoLeaks(t)
	g := startGateway(t, "audio: {codec: opus}\n")
	base := "http://" + g.HTTPAddr().String()
	const stream = "roam/phone"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	var mu sync.Mutex
	var events []web.Event
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var e web.Event
			if json.Unmarshal(b, &e) == nil && e.Stream == stream {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}
		}
	}()
	countEvents := func(typ string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, e := range events {
			if e.Type == typ {
				n++
			}
		}
		return n
	}

	cmd := exec.CommandContext(ctx, node, "icerestart.mjs", "--base", base, "--stream", stream,
		"--timeout", "20", "--chromium", chromiumPath)
	cmd.Dir = "browser"
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r iceRestartResult
	if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
		t.Fatalf("driver failed: %v %v: %s", err, jerr, out)
	}
	for _, s := range r.Steps {
		t.Logf("%s: publisher ICE %s (ufrag %s, gateway's %s), viewer ICE %s (ufrag %s, gateway's %s); %d frames sent, %d decoded, currentTime %.2f s",
			s.Name, s.Pub.State, s.Pub.Local, s.Pub.Remote, s.View.State, s.View.Local, s.View.Remote, s.FramesSent, s.FramesDecoded, s.CurrentTime)
	}
	for _, q := range r.Requests {
		im := ""
		if q.IfMatch != nil {
			im = " If-Match " + *q.IfMatch
		}
		t.Logf("%s %s%s → %d", q.Method, q.URL[strings.Index(q.URL, "/wh"):], im, q.Status)
	}
	if r.Error != nil || !r.OK || len(r.Steps) != 3 {
		t.Fatalf("the browser did not get through: %v", derefOr(r.Error, "no error given"))
	}
	play, afterPub, afterView := r.Steps[0], r.Steps[1], r.Steps[2]
	// The restarts took: new credentials on both sides of the restarted
	// connection, the other connection untouched.
	if afterPub.Pub.Local == play.Pub.Local || afterPub.Pub.Remote == play.Pub.Remote || afterPub.Pub.Remote == "" {
		t.Errorf("publisher restart: ufrags %s/%s before, %s/%s after", play.Pub.Local, play.Pub.Remote, afterPub.Pub.Local, afterPub.Pub.Remote)
	}
	if afterView.View.Local == afterPub.View.Local || afterView.View.Remote == afterPub.View.Remote || afterPub.View.Remote != play.View.Remote {
		t.Errorf("viewer restart: ufrags %s/%s before, %s/%s after", afterPub.View.Local, afterPub.View.Remote, afterView.View.Local, afterView.View.Remote)
	}
	for _, st := range r.Steps {
		for _, state := range []string{st.Pub.State, st.View.State} {
			if state != "connected" && state != "completed" {
				t.Errorf("%s: ICE %s", st.Name, state)
			}
		}
	}
	// What the RFC asks of the exchange, as the browser saw it.
	var restarts, deletes int
	etags := map[string]bool{}
	for _, q := range r.Requests {
		switch {
		case q.Method == "POST" && q.Status == 201 && q.ETag != nil:
			etags[*q.ETag] = true
		case q.Method == "PATCH" && q.IfMatch != nil && *q.IfMatch == "*":
			restarts++
			if q.Status != 200 || q.ETag == nil || etags[*q.ETag] {
				t.Errorf("ICE restart PATCH %s: %d, ETag %v (earlier %v)", q.URL, q.Status, q.ETag, etags)
			} else {
				etags[*q.ETag] = true
			}
		case q.Method == "PATCH":
			if q.Status != 204 {
				t.Errorf("trickle PATCH %s: %d", q.URL, q.Status)
			}
		case q.Method == "DELETE":
			deletes++
			if q.Status != 200 {
				t.Errorf("DELETE %s: %d", q.URL, q.Status)
			}
		}
	}
	if restarts != 2 || deletes != 2 {
		t.Errorf("%d ICE restarts and %d DELETEs seen, want 2 and 2", restarts, deletes)
	}
	// One stream from the first publish to the stop.
	waitFor(t, 10*time.Second, "stream.ended after the stop", func() bool { return countEvents("stream.ended") > 0 })
	if s, e := countEvents("stream.started"), countEvents("stream.ended"); s != 1 || e != 1 {
		mu.Lock()
		t.Errorf("%d stream.started and %d stream.ended, want one each: %+v", s, e, events)
		mu.Unlock()
	}
	mu.Lock()
	for _, e := range events {
		if e.Type == "stream.resumed" || e.Type == "stream.interrupted" {
			t.Errorf("event %s: the restart looked like a reconnect", e.Type)
		}
	}
	mu.Unlock()
	cancel()
	<-readerDone
}

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}
