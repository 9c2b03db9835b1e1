package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
)

// chromiumPath is the Debian chromium package's browser (TESTING.md).
const chromiumPath = "/usr/bin/chromium"

// needBrowser returns node's path when Chromium, node and the driver's npm
// packages are there. Without them the test is skipped on a developer's
// machine, but fails under CI (CI set), where `make test` installs them.
func needBrowser(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; `make test` (deps-test) installs it", what)
		}
		t.Skipf("%s is missing: run `make deps-test` to install it (this test fails instead of skipping under CI=true)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing("Chromium (" + chromiumPath + ", Debian package chromium)")
	}
	if _, err := os.Stat(filepath.Join("browser", "node_modules", "playwright-core")); err != nil {
		missing("e2e/browser/node_modules (npm ci in e2e/browser)")
	}
	return node
}

// playResult is what browser/play.mjs prints.
type playResult struct {
	OK       bool     `json:"ok"`
	Player   string   `json:"player"`
	Playing  bool     `json:"playing"`
	Advanced bool     `json:"advanced"`
	Start    float64  `json:"start"`
	End      float64  `json:"end"`
	Latency  *float64 `json:"latency"`
	Error    *string  `json:"error"`
	// Endlist: hls.js loaded a playlist with EXT-X-ENDLIST.
	Endlist bool `json:"endlist"`
	// Samples are [wall-clock ms, currentTime] every 500 ms of the watch.
	Samples [][2]float64 `json:"samples"`
}

// TestE2EBrowserLowLatency plays the live DASH MPD with dash.js (low-latency
// mode, from the MPD) and the live LL-HLS playlist with hls.js
// (lowLatencyMode) in headless Chromium, both at once, and records each
// player's own live-latency estimate. Asserted: playback starts and
// currentTime advances; latency only loosely (< 10 s), the numbers are logged.
func TestE2EBrowserLowLatency(t *testing.T) {
	node := needBrowser(t)
	checkNoLeaks(t)
	g := startGateway(t, "")
	base := "http://" + g.HTTPAddr().String()
	const stream = "e2e/browser"

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio,
		whipclient.Options{LoopbackOnly: true, Loop: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	urls := map[string]string{
		"dash": base + "/dash/" + stream + "/manifest.mpd",
		"hls":  base + "/hls/" + stream + "/index.m3u8",
	}
	waitFor(t, 15*time.Second, "the live MPD and playlist", func() bool {
		c1, _ := get(t, urls["dash"])
		c2, _ := get(t, urls["hls"])
		return c1 == http.StatusOK && c2 == http.StatusOK
	})

	var wg sync.WaitGroup
	results := map[string]playResult{}
	var mu sync.Mutex
	for player, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, pcancel := context.WithTimeout(ctx, 75*time.Second)
			defer pcancel()
			cmd := exec.CommandContext(pctx, node, "play.mjs", "--player", player, "--url", url,
				"--seconds", "5", "--timeout", "30", "--chromium", chromiumPath)
			cmd.Dir = "browser"
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			var r playResult
			if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
				msg := "driver failed: " + string(out)
				if err != nil {
					msg += " (" + err.Error() + ")"
				}
				r.Error = &msg
			}
			mu.Lock()
			results[player] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, player := range []string{"dash", "hls"} {
		r := results[player]
		lat := -1.0
		if r.Latency != nil {
			lat = *r.Latency
		}
		t.Logf("%s: playing=%v currentTime %.2f → %.2f s over 5 s, live latency %.2f s", player, r.Playing, r.Start, r.End, lat)
		if r.Error != nil {
			t.Errorf("%s: %s", player, *r.Error)
		}
		if !r.OK {
			t.Errorf("%s: did not play: %+v", player, r)
		}
		if r.Latency == nil || lat <= 0 || lat > 10 {
			t.Errorf("%s: live latency %.2f s, want 0-10 s", player, lat)
		}
	}
}
