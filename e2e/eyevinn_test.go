package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// eyevinnResult is what browser/eyevinn.mjs prints.
type eyevinnResult struct {
	OK      bool `json:"ok"`
	Samples []struct {
		T          float64 `json:"t"`
		FramesSent int     `json:"framesSent"`
		ICE        string  `json:"ice"`
		Connection string  `json:"connection"`
	} `json:"samples"`
	ICEServers []map[string]any `json:"iceServers"`
	Resource   string           `json:"resource"`
	Requests   []struct {
		Method string  `json:"method"`
		URL    string  `json:"url"`
		Status int     `json:"status"`
		ETag   *string `json:"etag"`
		Error  string  `json:"error"`
		Body   string  `json:"body"`
	} `json:"requests"`
	Error *string `json:"error"`
}

// TestE2EBrowserEyevinnPublish: Eyevinn's @eyevinn/whip-web-client, an
// independent WHIP client many web apps embed, publishes Chromium's fake
// camera and microphone from a page on another origin, with a publish
// token. It trickles only when the OPTIONS answer it can read lists PATCH
// in Access-Control-Allow-Methods, and sends each candidate in a PATCH
// whose entity-tag is in an `ETag` request header; both have to pass the
// gateway's CORS for the client to work as its authors meant. Asserted as
// a user would see it: every request the browser made was answered as the
// RFC says (OPTIONS 204, POST 201, each trickle PATCH 204, DELETE 200, no
// CORS failure), ICE connected, Chromium's video frames went out, the
// stream started and ended once, and the recording made from it is H.264 +
// AAC that decodes cleanly and lasts about as long as the publish.
func TestE2EBrowserEyevinnPublish(t *testing.T) {
	node := needBrowser(t)
	if _, err := os.Stat("browser/node_modules/@eyevinn/whip-web-client/dist/whip-client.js"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("e2e/browser/node_modules/@eyevinn/whip-web-client is missing (npm ci in e2e/browser)")
		}
		t.Skip("@eyevinn/whip-web-client is missing: npm ci in e2e/browser")
	}
	checkNoLeaks(t)
	const stream, token, seconds = "eyevinn/cam", "ey-s3cret", 12
	recDir := t.TempDir()
	g := startGateway(t, fmt.Sprintf(`  ice_servers:
    - urls: ["stun:127.0.0.1:%d"]
auth:
  publish_token: %s
storage:
  type: local
  path: %s
  spool_dir: %s
streams:
  - match: "eyevinn/*"
    record: true
`, freeUDPPort(t), token, filepath.Join(recDir, "rec"), filepath.Join(recDir, "spool")))
	base := "http://" + g.HTTPAddr().String()
	ev := dialEvents(t, context.Background(), base)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "eyevinn.mjs", "--base", base, "--stream", stream,
		"--token", token, "--seconds", fmt.Sprint(seconds), "--timeout", "30", "--chromium", chromiumPath)
	cmd.Dir = "browser"
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r eyevinnResult
	if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
		t.Fatalf("driver failed: %v %v: %s", err, jerr, out)
	}
	var patches int
	for _, q := range r.Requests {
		etag := ""
		if q.ETag != nil {
			etag = " ETag " + *q.ETag
		}
		t.Logf("%s %s%s → %d", q.Method, q.URL[strings.Index(q.URL, "/whip"):], etag, q.Status)
		want := map[string]int{"OPTIONS": 204, "POST": 201, "PATCH": 204, "DELETE": 200}[q.Method]
		if q.Status != want {
			t.Errorf("%s %s: %d, want %d (0: the browser refused the answer, e.g. CORS): %q; request body %q",
				q.Method, q.URL, q.Status, want, q.Error, q.Body)
		}
		if q.Method == "PATCH" {
			patches++
		}
	}
	t.Logf("ICE servers the client took from OPTIONS: %v; resource %s", r.ICEServers, r.Resource)
	if r.Error != nil || !r.OK {
		t.Fatalf("the client did not get through: %s", derefOr(r.Error, "no error given"))
	}
	if patches == 0 {
		t.Error("no trickle PATCH: the client did not read PATCH from the OPTIONS answer and fell back to non-trickle")
	}
	if !strings.HasPrefix(r.Resource, base+"/whip/"+stream) {
		t.Errorf("resource %q, want the absolute session URL under %s", r.Resource, base+"/whip/"+stream)
	}
	if len(r.Samples) == 0 {
		t.Fatal("no samples")
	}
	last := r.Samples[len(r.Samples)-1]
	t.Logf("after %.1f s: ICE %s, connection %s, %d video frames sent", last.T, last.ICE, last.Connection, last.FramesSent)
	if last.ICE != "connected" && last.ICE != "completed" {
		t.Errorf("ICE %s at the end of the publish", last.ICE)
	}
	if last.FramesSent < 10*seconds {
		t.Errorf("%d video frames sent in %d s", last.FramesSent, seconds)
	}
	if e := ev.next("stream.started"); e.Stream != stream {
		t.Errorf("stream.started for %q", e.Stream)
	}
	if e := ev.next("stream.ended"); e.Stream != stream {
		t.Errorf("stream.ended for %q", e.Stream)
	}

	// What was published, as the recording holds it.
	mp4 := finishedRecordingMP4(t, filepath.Join(recDir, "rec"))
	p := runProbe(t, mp4, true)
	vcodec, _, vframes, okV := p.stream("video")
	acodec, _, aframes, okA := p.stream("audio")
	t.Logf("recording: %s %d frames, %s %d frames, %.2f s", vcodec, vframes, acodec, aframes, p.duration())
	if !okV || vcodec != "h264" || !okA || acodec != "aac" {
		t.Errorf("recording codecs: video %q, audio %q; want h264 and aac", vcodec, acodec)
	}
	// The publish ran `seconds` after ICE connected, less what the first
	// keyframe took; generous either way.
	if d := p.duration(); d < seconds*0.6 || d > seconds+5 {
		t.Errorf("recording lasts %.2f s for a %d s publish", d, seconds)
	}
	if vframes < int(float64(last.FramesSent)*0.6) {
		t.Errorf("recording has %d video frames of the %d Chromium sent", vframes, last.FramesSent)
	}
	if msg := ffmpegDecodeErrors(mp4); msg != "" {
		t.Errorf("ffmpeg decode of the recording: %s", msg)
	}
}
