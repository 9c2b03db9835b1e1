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

	"github.com/whipcast/whipcast/internal/whipclient"
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

// TestE2EICERestartNoDiscontinuity: a pion publisher restarts ICE twice
// while LL-HLS and DASH are watched. The outputs do not notice: the media
// playlist gets no EXT-X-DISCONTINUITY and keeps adding segments after each
// restart, the MPD keeps one Period, the stream has no resume and the same
// start. (Chromium's publisher ramps its resolution, which is a
// discontinuity of its own: hence a fixture of one size here.)
func TestE2EICERestartNoDiscontinuity(t *testing.T) {
	checkNoLeaks(t)
	g := startGateway(t, "")
	base := "http://" + g.HTTPAddr().String()
	const stream = "roam/pion"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio,
		whipclient.Options{LoopbackOnly: true, Loop: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var media string
	waitFor(t, 15*time.Second, "the multivariant playlist", func() bool {
		code, body := get(t, base+"/hls/"+stream+"/index.m3u8")
		if pl := mediaPlaylists(body); code == 200 && len(pl) > 0 {
			media = base + "/hls/" + stream + "/" + pl[0]
			return true
		}
		return false
	})
	w := watchPlaylist(t, media)
	// segments is the media sequence number of the playlist's newest
	// segment: it grows by one per segment cut.
	newest := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.msn) == 0 {
			return -1
		}
		return w.msn[len(w.msn)-1] + strings.Count(w.lastBody, "#EXTINF")
	}
	waitFor(t, 15*time.Second, "a first segment", func() bool { return newest() > 0 })
	started := streamStarted(t, base, stream)
	for i := range 2 {
		before := newest()
		if _, err := pub.RestartICE(ctx); err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		waitFor(t, 15*time.Second, "two segments after the restart", func() bool { return newest() >= before+2 })
	}
	w.close()
	if w.disc || w.discSeq != 0 || len(w.bad) > 0 {
		t.Errorf("HLS noticed the restarts: discontinuity %v, discontinuity sequence %d, bad answers %v; last playlist:\n%s", w.disc, w.discSeq, w.bad, w.lastBody)
	}
	if code, m := getMPD(t, base+"/dash/"+stream+"/manifest.mpd"); code != 200 || len(m.Periods) != 1 {
		t.Errorf("MPD after the restarts: %d, %d Periods, want one", code, len(m.Periods))
	}
	if s := streamStarted(t, base, stream); s != started {
		t.Errorf("stream started %q before the restarts, %q after: a new stream", started, s)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
}

// streamStarted is the stream's "started" in the API, failing the test
// when it has resumed (a reconnect) or is not live.
func streamStarted(t *testing.T, base, stream string) string {
	t.Helper()
	code, body := get(t, base+"/v1/streams/"+stream)
	var s struct {
		Started string `json:"started"`
		Resumes int    `json:"resumes"`
		State   string `json:"state"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &s) != nil || s.State != "live" || s.Resumes != 0 {
		t.Fatalf("stream: %d %s", code, body)
	}
	return s.Started
}

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}
