package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/webhook"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/web"
)

// adminCall sends body to the API with the admin token and decodes the
// JSON answer.
func adminCall(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// videoSize is the size the stream's H.264 SPS says, 0x0 before one came.
func videoSize(s *media.Stream) (int, int) {
	if c := s.LastConfig(s.Track(media.KindVideo)); c != nil {
		return c.Width, c.Height
	}
	return 0, 0
}

// TestE2EFilterAPI publishes with no filter in the config, then, while the
// stream is live, sets rotate 90 through PUT /v1/streams/{stream}/filters:
// {stream}/filtered appears and its HLS is H.264 240x320 while the source
// stays 320x240; a second PUT replaces the chain (the filtered stream
// restarts at the new size); DELETE ends it and its HLS goes 404 after the
// grace. Bad bodies, unknown streams and unfit chains are refused.
func TestE2EFilterAPI(t *testing.T) {
	if !codec.Available {
		t.Skip("no codec support in this build")
	}
	checkNoLeaks(t)
	const admin = "adm1n"
	imageDir, err := filepath.Abs("../testdata")
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "auth:\n  admin_token: "+admin+"\nhls:\n  grace: 1s\nfilters:\n  max_stages: 1\n  image_dir: "+imageDir+"\n")
	base := "http://" + g.HTTPAddr().String()
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		return adminCall(t, base, admin, method, path, body)
	}
	const stream = "e2e/fapi"
	const fpath = "/v1/streams/" + stream + "/filters"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Two passes of the file: the source must outlive the steps below, and
	// each first HLS request of a stream waits for its packaging to start.
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true, Loop: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	// A second live stream, to meet filters.max_stages (1) with.
	other, err := whipclient.Publish(ctx, base+"/whip/e2e/other", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true, Loop: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	waitFor(t, 5*time.Second, "the source's first keyframe", func() bool {
		src, ok := g.Registry.Get(stream)
		if !ok {
			return false
		}
		w, _ := videoSize(src)
		return w > 0
	})

	// Refusals, before anything runs.
	if code, out := call("GET", fpath, ""); code != http.StatusNotFound || out["code"] != "no_filter" {
		t.Fatalf("GET before PUT: %d %v", code, out)
	}
	if code, _ := adminCall(t, base, "wrong", "PUT", fpath, `[{"rotate":90}]`); code != http.StatusForbidden {
		t.Fatalf("wrong token: %d, want 403", code)
	}
	for _, tc := range []struct {
		path, body string
		status     int
		code, msg  string
	}{
		{fpath, `[{"rotate":45}]`, 400, "bad_filter", "filters[0].rotate: 45 is not 90, 180 or 270"},
		{fpath, `[{"rotate":90},{"blur":2}]`, 400, "bad_filter", `filters[1]: unknown filter "blur"`},
		{fpath, `[{"text":{"title":"x","colour":"red"}}]`, 400, "bad_filter", `filters[0].text: unknown key "colour"`},
		{fpath, `[{"image":{"path":"/etc/passwd"}}]`, 400, "bad_filter", "filters[0].image.path: is outside filters.image_dir"},
		{fpath, `[{"image":{"path":"../go.mod"}}]`, 400, "bad_filter", "filters[0].image.path: is outside filters.image_dir"},
		{fpath, `[{"crop":{"x":0,"y":0,"width":640,"height":480}}]`, 422, "filter_unfit", "does not fit the 320x240 picture"},
		{"/v1/streams/e2e/nope/filters", `[{"rotate":90}]`, 404, "stream_not_found", "not live"},
	} {
		code, out := call("PUT", tc.path, tc.body)
		if msg, _ := out["error"].(string); code != tc.status || out["code"] != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("PUT %s %s: %d %v, want %d %s %q", tc.path, tc.body, code, out, tc.status, tc.code, tc.msg)
		}
	}
	if n := g.Filters.Running(); n != 0 {
		t.Fatalf("%d stages after refusals", n)
	}

	// Rotate 90 on the live stream.
	putAt := time.Now()
	code, out := call("PUT", fpath, `[{"rotate":90}]`)
	if code != http.StatusOK || out["output"] != stream+"/filtered" || out["source"] != "api" {
		t.Fatalf("PUT rotate: %d %v", code, out)
	}
	var filtered *media.Stream
	waitFor(t, 5*time.Second, "{stream}/filtered at 240x320", func() bool {
		var ok bool
		filtered, ok = g.Registry.Get(stream + "/filtered")
		w, h := 0, 0
		if ok {
			w, h = videoSize(filtered)
		}
		return w == 240 && h == 320
	})
	t.Logf("filtered stream at 240x320 %v after the PUT", time.Since(putAt).Round(time.Millisecond))
	hlsURL := base + "/hls/" + stream + "/filtered/index.m3u8"
	waitFor(t, 8*time.Second, "a segment in the filtered HLS", func() bool {
		code, mv := get(t, hlsURL)
		if code != http.StatusOK {
			return false
		}
		for _, u := range mediaPlaylists(mv) {
			if strings.Contains(u, "video") {
				_, pl := get(t, base+"/hls/"+stream+"/filtered/"+u)
				return strings.Contains(pl, "#EXTINF")
			}
		}
		return false
	})
	t.Logf("first filtered HLS segment %v after the PUT", time.Since(putAt).Round(time.Millisecond))
	p := runProbe(t, hlsURL, false)
	var sawVideo bool
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			sawVideo = true
			if s.CodecName != "h264" || s.Width != 240 || s.Height != 320 {
				t.Errorf("filtered HLS video: %s %dx%d, want h264 240x320", s.CodecName, s.Width, s.Height)
			}
		}
	}
	if !sawVideo {
		t.Fatalf("filtered HLS has no video: %+v", p.Streams)
	}
	for _, s := range runProbe(t, base+"/hls/"+stream+"/index.m3u8", false).Streams {
		if s.CodecType == "video" && (s.Width != 320 || s.Height != 240) {
			t.Errorf("source video %dx%d, want 320x240 unchanged", s.Width, s.Height)
		}
	}
	// filters.max_stages is 1: a second stream is refused, a filtered
	// stream is never filtered again.
	if code, out := call("PUT", "/v1/streams/e2e/other/filters", `[{"rotate":180}]`); code != http.StatusConflict || out["code"] != "filter_limit" {
		t.Errorf("PUT past filters.max_stages: %d %v, want 409 filter_limit", code, out)
	}
	if code, out := call("PUT", "/v1/streams/"+stream+"/filtered/filters", `[{"rotate":180}]`); code != http.StatusBadRequest {
		t.Errorf("PUT on the filtered stream: %d %v, want 400", code, out)
	}
	code, out = call("GET", fpath, "")
	if fs, _ := out["filters"].([]any); code != http.StatusOK || len(fs) != 1 || fs[0].(map[string]any)["rotate"] != 90.0 {
		t.Fatalf("GET: %d %v", code, out)
	}

	// Replace (not counted twice against max_stages 1): the filtered stream
	// restarts with the new chain, a logo from filters.image_dir included.
	if code, out := call("PUT", fpath, `[{"scale":"160x120"},{"text":{"title":"api","clock":true}},{"image":{"path":"logo.png","x":-4,"y":4}}]`); code != http.StatusOK {
		t.Fatalf("PUT replace: %d %v", code, out)
	}
	waitFor(t, 5*time.Second, "a new {stream}/filtered at 160x120", func() bool {
		s, ok := g.Registry.Get(stream + "/filtered")
		if !ok || s == filtered {
			return false
		}
		w, h := videoSize(s)
		return w == 160 && h == 120
	})
	if n := g.Filters.Running(); n != 1 {
		t.Fatalf("%d stages after a replace, want 1", n)
	}

	// Motion on the same live stream, through the API only.
	const mpath = "/v1/streams/" + stream + "/motion"
	if code, out := call("PUT", mpath, `{"sensitivity":0.6,"region":{"x":0,"y":0,"width":1,"height":0.5},"stop_after":"3s"}`); code != http.StatusOK || out["source"] != "api" || out["stop_after"] != "3s" {
		t.Fatalf("PUT motion: %d %v", code, out)
	}
	if code, out := call("GET", mpath, ""); code != http.StatusOK || out["sensitivity"] != 0.6 {
		t.Fatalf("GET motion: %d %v", code, out)
	}
	if code, out := call("PUT", mpath, `{"sensitivity":2}`); code != http.StatusBadRequest || out["code"] != "bad_motion" {
		t.Fatalf("PUT bad motion: %d %v", code, out)
	}
	if code, _ := call("DELETE", mpath, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE motion: %d", code)
	}
	if code, out := call("GET", mpath, ""); code != http.StatusNotFound || out["code"] != "no_motion" {
		t.Fatalf("GET motion after DELETE: %d %v", code, out)
	}

	// DELETE: the filtered stream ends; its HLS goes after the grace.
	if code, _ := call("DELETE", fpath, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	if _, ok := g.Registry.Get(stream + "/filtered"); ok || g.Filters.Running() != 0 {
		t.Fatal("filtered stream still live after DELETE")
	}
	if _, ok := g.Registry.Get(stream); !ok {
		t.Fatal("the source ended with its filters")
	}
	if code, out := call("DELETE", fpath, ""); code != http.StatusNotFound || out["code"] != "no_filter" {
		t.Fatalf("DELETE again: %d %v", code, out)
	}
	waitFor(t, 5*time.Second, "the filtered HLS to go (hls.grace 1s)", func() bool {
		code, _ := get(t, hlsURL)
		return code == http.StatusNotFound
	})
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	if time.Since(putAt) > fixtureSeconds*time.Second {
		t.Logf("note: the publish ended before the checks did (%v)", time.Since(putAt))
	}
}

// TestE2EMotionWebhook: a motion rule with a webhook to a real HTTP server:
// motion.start arrives there with a score and a valid signature while the
// stream is live, motion.stop after the stream ends; the API shows the
// detector with its webhook (URL without its query, never the secret).
func TestE2EMotionWebhook(t *testing.T) {
	if !codec.Available {
		t.Skip("no codec support in this build")
	}
	checkNoLeaks(t)
	const secret = "wh-s3cret"
	type post struct {
		h    http.Header
		body []byte
		at   time.Time
	}
	posts := make(chan post, 16)
	var once sync.Once
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case posts <- post{r.Header.Clone(), b, time.Now()}:
		case <-stop:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { once.Do(func() { close(stop) }); srv.Close() })
	const admin = "adm1n"
	g := startGateway(t, "auth:\n  admin_token: "+admin+"\nstreams:\n  - match: \"e2e/*\"\n    motion: {sensitivity: 0.5, webhook: \""+
		srv.URL+"/hook?token=abc\", webhook_secret: "+secret+"}\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next := func(want string) (web.Event, post) {
		t.Helper()
		for {
			select {
			case p := <-posts:
				var e web.Event
				if err := json.Unmarshal(p.body, &e); err != nil {
					t.Fatalf("webhook body %q: %v", p.body, err)
				}
				if e.Type == want {
					return e, p
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("no %s at the webhook", want)
			}
		}
	}
	postAt := time.Now()
	pub, err := whipclient.Publish(ctx, base+"/whip/e2e/hook", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	e, p := next("motion.start")
	score, _ := e.Data["score"].(float64)
	t.Logf("motion.start at the webhook %v after the WHIP POST, score %.4f", p.at.Sub(postAt).Round(time.Millisecond), score)
	if e.Stream != "e2e/hook" || score <= 0 || e.Time.IsZero() {
		t.Fatalf("motion.start %+v", e)
	}
	ts := p.h.Get(webhook.HeaderTimestamp)
	if !webhook.Verify(secret, ts, p.body, p.h.Get(webhook.HeaderSignature)) {
		t.Fatalf("signature %q over %q does not verify", p.h.Get(webhook.HeaderSignature), p.body)
	}
	if p.h.Get(webhook.HeaderEvent) != "motion.start" || p.h.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", p.h)
	}

	code, out := adminCall(t, base, admin, "GET", "/v1/streams/e2e/hook/motion", "")
	hook, _ := out["webhook"].(map[string]any)
	if code != http.StatusOK || out["source"] != "config" || hook == nil || hook["signed"] != true ||
		strings.Contains(hook["url"].(string), "abc") || strings.Contains(toJSON(out), secret) {
		t.Fatalf("GET motion: %d %v", code, out)
	}
	if code, out := adminCall(t, base, admin, "PUT", "/v1/streams/e2e/hook/motion", `{"webhook":"ftp://x/y"}`); code != http.StatusBadRequest ||
		!strings.Contains(out["error"].(string), "webhook") {
		t.Fatalf("PUT bad webhook: %d %v", code, out)
	}
	waitFor(t, 5*time.Second, "the delivery in /metrics", func() bool {
		_, m := get(t, base+"/metrics")
		return strings.Contains(m, `whipcast_motion_webhook_events_total{result="delivered"} `) &&
			!strings.Contains(m, `whipcast_motion_webhook_events_total{result="delivered"} 0`)
	})
	if code, _ := adminCall(t, base, admin, "PUT", "/v1/streams/e2e/none/motion", `{}`); code != http.StatusNotFound {
		t.Fatalf("PUT unknown stream: %d", code)
	}

	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	endAt := time.Now()
	_ = pub.Close()
	e, p = next("motion.stop")
	t.Logf("motion.stop at the webhook %v after the publish ended", p.at.Sub(endAt).Round(time.Millisecond))
	if e.Stream != "e2e/hook" || !webhook.Verify(secret, p.h.Get(webhook.HeaderTimestamp), p.body, p.h.Get(webhook.HeaderSignature)) {
		t.Fatalf("motion.stop %+v", e)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
