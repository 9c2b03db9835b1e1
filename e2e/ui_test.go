package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// uiResult is what browser/ui.mjs prints.
type uiResult struct {
	OK        bool     `json:"ok"`
	Published bool     `json:"published"`
	OfferH264 bool     `json:"offerH264"`
	Playing   bool     `json:"playing"`
	Advanced  bool     `json:"advanced"`
	Start     float64  `json:"start"`
	End       float64  `json:"end"`
	Latency   *float64 `json:"latency"`
	Error     *string  `json:"error"`
	Dashboard string   `json:"dashboard"`
}

// TestE2EWebUI publishes Chromium's fake camera and microphone from the
// embedded /publish page over WHIP, plays it on /watch with hls.js, and
// checks the dashboard lists it. Playback is gated by a play token, so the
// token rewriting of playlists is exercised with a real player. Screenshots
// go to $WHIPCAST_UI_SHOTS (default: the test's temp dir).
func TestE2EWebUI(t *testing.T) {
	node := needBrowser(t)
	checkNoLeaks(t)
	g := startGateway(t, "auth:\n  play_token: w4tch\n")
	base := "http://" + g.HTTPAddr().String()
	shots := os.Getenv("WHIPCAST_UI_SHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "ui.mjs", "--base", base, "--stream", "e2e/ui", "--player", "hls",
		"--token", "w4tch", "--shots", shots, "--chromium", chromiumPath)
	cmd.Dir = "browser"
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r uiResult
	if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
		t.Fatalf("driver failed: %v %s", err, out)
	}
	lat := -1.0
	if r.Latency != nil {
		lat = *r.Latency
	}
	t.Logf("publish: %v (H.264 in Chromium's capabilities: %v); watch: playing=%v currentTime %.2f → %.2f s, latency %.2f s; screenshots in %s",
		r.Published, r.OfferH264, r.Playing, r.Start, r.End, lat, shots)
	if r.Error != nil {
		t.Errorf("error: %s", *r.Error)
	}
	if !r.OK {
		t.Errorf("UI round trip failed: %+v", r)
	}
	if !strings.Contains(r.Dashboard, "e2e/ui") || !strings.Contains(r.Dashboard, "h264") {
		t.Errorf("dashboard rows: %q", r.Dashboard)
	}
}

// TestE2EWatchPageShowsErrors: the /watch page says "error" with the
// player's message when the player fails (here: a stream that is not
// there, so the MPD and the playlist are 404), for dash.js and hls.js.
func TestE2EWatchPageShowsErrors(t *testing.T) {
	node := needBrowser(t)
	checkNoLeaks(t)
	g := startGateway(t, "")
	base := "http://" + g.HTTPAddr().String()
	for _, player := range []string{"dash", "hls"} {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		cmd := exec.CommandContext(ctx, node, "uierror.mjs", "--url", base+"/watch?stream=e2e/missing&player="+player,
			"--seconds", "15", "--chromium", chromiumPath)
		cmd.Dir = "browser"
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		cancel()
		var r struct {
			State, Info string
			Error       *string
		}
		if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
			t.Fatalf("%s: driver failed: %v %s", player, err, out)
		}
		t.Logf("%s: state %q, info %q", player, r.State, r.Info)
		if r.State != "error" || r.Error == nil || r.Info == "" || strings.HasPrefix(*r.Error, "driver:") {
			t.Errorf("%s: the page shows state %q info %q (error %v), want the player's error", player, r.State, r.Info, r.Error)
		}
	}
}
