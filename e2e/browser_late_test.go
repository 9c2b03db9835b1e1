package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/stages/codec"
)

// TestE2EBrowserLatePlayer is issue 12's on-demand packaging as a viewer
// meets it: Chromium publishes its fake camera and microphone through the
// gateway's /publish page, nobody watches for longer than hls.idle (so
// nothing is packaged and no Opus is transcoded), then hls.js and dash.js
// in two more Chromiums open the stream. Both must play from their first
// playlist or MPD, with AAC audio in the packaging (the transcode count
// follows them), no error and no stall; the log gives how long each waited
// from its page load to the first picture.
func TestE2EBrowserLatePlayer(t *testing.T) {
	node := needBrowser(t)
	if !codec.Available {
		t.Skip("no codec support in this build: no AAC")
	}
	checkNoLeaks(t)
	g := startGateway(t, "hls:\n  idle: "+lazyIdle.String()+"\n")
	base := "http://" + g.HTTPAddr().String()
	const stream = "late"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var published sync.WaitGroup
	var pub publishResult
	published.Add(1)
	pcmd := exec.CommandContext(ctx, node, "publish.mjs", "--base", base, "--stream", stream,
		"--seconds", "100", "--stdin", "1", "--chromium", chromiumPath)
	pcmd.Dir = "browser"
	pcmd.Stderr = os.Stderr
	endPublish, err := pcmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	endPublished := func() { endPublish.Close(); published.Wait() }
	defer endPublished()
	go func() {
		defer published.Done()
		out, err := pcmd.Output()
		if jerr := json.Unmarshal(out, &pub); err != nil || jerr != nil {
			pub.Error = fmt.Sprintf("driver failed: %v %s", err, out)
		}
	}()

	// Published, but unwatched: by the registry, not by a playlist request
	// (which would start the packaging this test wants off).
	waitFor(t, 40*time.Second, "the browser's publish", func() bool {
		_, ok := g.Registry.Get(stream)
		return ok
	})
	time.Sleep(lazyIdle + time.Second)
	checkCounts(t, g, base, 0, 0, "published by Chromium, no player yet")

	urls := map[string]string{
		"dash": base + "/dash/" + stream + "/manifest.mpd",
		"hls":  base + "/hls/" + stream + "/index.m3u8",
	}
	results := map[string]watchResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for player, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runWatch(ctx, node, player, url, "--seconds", "12", "--timeout", "30")
			mu.Lock()
			results[player] = r
			mu.Unlock()
		}()
	}
	// The gateway's side of the wait, beside the players (which take a
	// second or more to start Chromium): a plain client's first
	// multivariant playlist, asked for as the players launch.
	start := time.Now()
	if code, mv := get(t, urls["hls"]); code != 200 {
		t.Errorf("first playlist of a late client: %d %s", code, mv)
	}
	t.Logf("a late client's first playlist waited %v", time.Since(start).Round(time.Millisecond))
	// While they play, the stream is packaged once and transcoded once,
	// whatever the number of players.
	waitFor(t, 30*time.Second, "the packaging started by the players", func() bool {
		return g.AAC.Running() == 1 && g.Packaged() == 1
	})
	checkCounts(t, g, base, 1, 1, "two late players")
	checkAACSegment(t, base, stream)
	wg.Wait()
	endPublished()

	if !pub.Published || pub.Error != "" {
		t.Fatalf("Chromium did not publish: %+v", pub)
	}
	for _, player := range []string{"dash", "hls"} {
		r := results[player]
		t.Logf("%s: a late player's first playlist/MPD came %.2f s and its first picture %.2f s after its page load", player, r.Manifest, r.Startup)
		checkWatched(t, player, r, 1)
	}
}
