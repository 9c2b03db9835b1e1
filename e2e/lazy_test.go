package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/stages/codec"
)

// lazyIdle is hls.idle in the on-demand test: short, so a player's leaving
// shows within the test.
const lazyIdle = 2 * time.Second

// TestE2ELazyAAC checks that the Opus→AAC transcode and the packaging run
// only while something needs them, on the default config (hls.idle set
// short): a published stream that nobody watches costs neither; a player's
// first playlist starts them and gets AAC audio; when the player stops
// asking they stop after hls.idle; an RTMP output added through the API
// runs the transcode alone, and removing it stops it; a recording rule
// packages its stream from the publish.
//
// It also measures how long a late player's first playlist waits, with a
// publisher that answers keyframe requests (a browser, OBS with a short
// GOP) and with one that does not (keyframes every 2 s as the file has them).
func TestE2ELazyAAC(t *testing.T) {
	if !codec.Available {
		t.Skip("no codec support in this build: no AAC")
	}
	n := startNginx(t)
	checkNoLeaks(t)
	const admin = "adm1n"
	g := startGateway(t, "auth:\n  admin_token: "+admin+"\nhls:\n  idle: "+lazyIdle.String()+"\n"+
		"streams:\n  - match: \"rec/*\"\n    record: true\n")
	base := "http://" + g.HTTPAddr().String()

	opts := whipclient.Options{Loop: 10, MaxDuration: 100 * time.Second}
	pli := opts
	pli.AnswerPLI = true
	publish(t, g, "lazy/pli", pli)
	publish(t, g, "lazy/nopli", opts)
	for _, s := range []string{"lazy/pli", "lazy/nopli"} {
		waitFor(t, 10*time.Second, s+" live", func() bool { _, ok := g.Registry.Get(s); return ok })
	}
	// Nobody watches: no transcode, nothing packaged, for longer than the
	// idle time.
	time.Sleep(lazyIdle + time.Second)
	checkCounts(t, g, base, 0, 0, "two streams published, no player")

	// A player arrives on each stream in turn: its first playlist waits for
	// the first segment, then carries AAC; it leaves, and after hls.idle the
	// transcode and the packaging stop.
	for _, s := range []string{"lazy/pli", "lazy/nopli"} {
		start := time.Now()
		code, mv := get(t, base+"/hls/"+s+"/index.m3u8")
		wait := time.Since(start)
		if code != http.StatusOK {
			t.Fatalf("%s: first playlist of a late player: %d %s", s, code, mv)
		}
		t.Logf("%s: a late player's first playlist waited %v", s, wait.Round(time.Millisecond))
		if !strings.Contains(mv, `mp4a.40.2"`) {
			t.Errorf("%s: first multivariant playlist names no AAC:\n%s", s, mv)
		}
		checkCounts(t, g, base, 1, 1, "a player on "+s)
		checkAACSegment(t, base, s)
		waitFor(t, lazyIdle+10*time.Second, "the transcode to stop after the player left", func() bool {
			return g.AAC.Running() == 0 && g.Packaged() == 0
		})
		checkCounts(t, g, base, 0, 0, "the player of "+s+" left")
	}

	// A plain RTMP output needs AAC, not CMAF: one transcode, no packaging.
	code, out := adminCall(t, base, admin, "POST", "/v1/streams/lazy/pli/outputs", `{"url":"`+n.url("live/lazy")+`"}`)
	if code != http.StatusCreated {
		t.Fatalf("add output: %d %v", code, out)
	}
	id, _ := out["id"].(string)
	waitFor(t, 10*time.Second, "the RTMP output live", func() bool {
		_, l := adminCall(t, base, admin, "GET", "/v1/streams/lazy/pli/outputs", "")
		outs, _ := l["outputs"].([]any)
		return len(outs) == 1 && outs[0].(map[string]any)["state"] == "live"
	})
	checkCounts(t, g, base, 1, 0, "an RTMP output")
	if code, _ := adminCall(t, base, admin, "DELETE", "/v1/streams/lazy/pli/outputs/"+id, ""); code != http.StatusNoContent {
		t.Fatalf("remove output: %d", code)
	}
	waitFor(t, 5*time.Second, "the transcode to stop with the output", func() bool { return g.AAC.Running() == 0 })
	checkCounts(t, g, base, 0, 0, "the RTMP output removed")

	// A recording rule wants its stream from the publish, players or not.
	publish(t, g, "rec/cam", opts)
	waitFor(t, 10*time.Second, "rec/cam live", func() bool { _, ok := g.Registry.Get("rec/cam"); return ok })
	checkCounts(t, g, base, 1, 1, "a recorded stream")
	time.Sleep(lazyIdle + time.Second)
	checkCounts(t, g, base, 1, 1, "a recorded stream past the idle time")
}

// checkCounts compares the transcodes and packaged streams with the
// gateway's own counts and with /metrics.
func checkCounts(t *testing.T, g *gateway.Gateway, base string, aac, packaged int, when string) {
	t.Helper()
	if a, p := g.AAC.Running(), g.Packaged(); a != aac || p != packaged {
		t.Fatalf("%s: %d transcodes and %d packaged streams, want %d and %d", when, a, p, aac, packaged)
	}
	_, m := get(t, base+"/metrics")
	for name, want := range map[string]int{"whipcast_aac_transcodes": aac, "whipcast_packaged_streams": packaged} {
		re := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`)
		got := re.FindStringSubmatch(m)
		if got == nil || got[1] != strconv.Itoa(want) {
			t.Fatalf("%s: /metrics %s = %v, want %d", when, name, got, want)
		}
	}
}

// checkAACSegment fetches the audio playlist of stream, its init segment
// and its first segment as a player would, and checks with ffprobe and
// ffmpeg that they hold AAC that decodes without a complaint.
func checkAACSegment(t *testing.T, base, stream string) {
	t.Helper()
	dir := base + "/hls/" + stream + "/"
	code, pl := get(t, dir+"audio.m3u8")
	if code != http.StatusOK {
		t.Fatalf("audio playlist: %d", code)
	}
	initURI := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindStringSubmatch(pl)
	segURI := regexp.MustCompile(`(?m)^#EXTINF:[^\n]*\n(?:#[^\n]*\n)*([^#\s][^\n]*)$`).FindStringSubmatch(pl)
	if initURI == nil || segURI == nil {
		t.Fatalf("audio playlist without an init segment or a segment:\n%s", pl)
	}
	var file []byte
	for _, u := range []string{initURI[1], segURI[1]} {
		code, b := get(t, dir+u)
		if code != http.StatusOK || len(b) == 0 {
			t.Fatalf("%s: %d, %d bytes", u, code, len(b))
		}
		file = append(file, b...)
	}
	path := filepath.Join(t.TempDir(), "audio.mp4")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	p := runProbe(t, path, true)
	c, _, frames, ok := p.stream("audio")
	if !ok || c != "aac" || frames == 0 {
		t.Fatalf("the first audio segment: codec %q, %d frames (want aac)", c, frames)
	}
	out, err := exec.CommandContext(context.Background(), "ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg decode of the first audio segment: %v\n%s", err, out)
	}
	t.Logf("%s: first audio segment %s: aac, %d frames, decodes silently", stream, segURI[1], frames)
}
