package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// publishResult is what browser/publish.mjs prints.
type publishResult struct {
	Published bool     `json:"published"`
	Sizes     [][2]any `json:"sizes"`
	// With --relay: the ICE servers the page took from the gateway, and
	// the candidate types of the pair ICE selected.
	ICEServers []struct {
		URLs     string `json:"urls"`
		Username string `json:"username"`
	} `json:"iceServers"`
	Pair *struct {
		Local, Remote string
	} `json:"pair"`
	Error string `json:"error"`
}

// TestE2EBrowserRampDASHHLS is issue 11's field case with no fixture of ours:
// Chromium publishes its fake camera through the gateway's /publish page
// (its encoder starts small and ramps up to 1280x720 in the first seconds,
// each step a new SPS, so a new DASH Period and an HLS discontinuity), while
// dash.js and hls.js in two more Chromiums open the stream as soon as it is
// published and play through every change: no decode error, no MediaSource
// reset, no fatal error, currentTime advancing, more than one picture size
// seen.
func TestE2EBrowserRampDASHHLS(t *testing.T) {
	node := needBrowser(t)
	checkNoLeaks(t)
	g := startGateway(t, "")
	base := "http://" + g.HTTPAddr().String()
	const stream = "ramp"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var wg, published sync.WaitGroup
	var pub publishResult
	published.Add(1)
	// The publish lasts until the players are done (its stdin closed),
	// however long they took to start: with a fixed 30 s, players that
	// first played 10 s in on a busy two-core machine watched past its end
	// and "stalled" there.
	pcmd := exec.CommandContext(ctx, node, "publish.mjs", "--base", base, "--stream", stream,
		"--seconds", "100", "--stdin", "1", "--chromium", chromiumPath)
	pcmd.Dir = "browser"
	pcmd.Stderr = os.Stderr
	endPublish, err := pcmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	endPublished := func() { endPublish.Close(); published.Wait() }
	defer endPublished() // also on a failed wait below
	go func() {
		defer published.Done()
		out, err := pcmd.Output()
		if jerr := json.Unmarshal(out, &pub); err != nil || jerr != nil {
			pub.Error = fmt.Sprintf("driver failed: %v %s", err, out)
		}
	}()

	// The players start once the publish is there, as a viewer following a
	// link would, and watch through the ramp.
	waitFor(t, 40*time.Second, "the browser's publish", func() bool {
		resp, err := http.Get(base + "/hls/" + stream + "/index.m3u8")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	results := map[string]watchResult{}
	var mu sync.Mutex
	urls := map[string]string{
		"dash": base + "/dash/" + stream + "/manifest.mpd",
		"hls":  base + "/hls/" + stream + "/index.m3u8",
	}
	for player, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runWatch(ctx, node, player, url, "--seconds", "22", "--timeout", "30")
			mu.Lock()
			results[player] = r
			mu.Unlock()
		}()
	}

	// Meanwhile: how many Periods the live MPD has had (each picture size
	// of the ramp is one), and every MPD parses.
	maxPeriods := 0
	deadline := time.Now().Add(25 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(urls["dash"])
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var m struct {
				Periods []struct{} `xml:"Period"`
			}
			if resp.StatusCode == http.StatusOK {
				if err := xml.Unmarshal(body, &m); err != nil {
					t.Errorf("live MPD does not parse: %v", err)
				}
				maxPeriods = max(maxPeriods, len(m.Periods))
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	wg.Wait()
	endPublished()

	t.Logf("publisher (Chromium): %+v; the live MPD had up to %d Periods", pub, maxPeriods)
	if !pub.Published || pub.Error != "" {
		t.Fatalf("Chromium did not publish: %+v", pub)
	}
	if distinct := sizesSeen(pub.Sizes); distinct < 2 {
		// Without the ramp this test shows nothing of what it is for.
		t.Fatalf("Chromium sent one picture size only (%v): no resolution change to play through", pub.Sizes)
	}
	for _, player := range []string{"dash", "hls"} {
		checkWatched(t, player, results[player], 2)
	}
}
