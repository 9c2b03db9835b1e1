package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
)

// TestE2EMonoOpusToAAC: a publisher that sends mono Opus on its
// opus/48000/2 track, as browsers do by default, gets mono AAC in the HLS
// of the default config: the multivariant playlist says CHANNELS="1" with
// mp4a.40.2, ffprobe reads one AAC channel for the 10 s that were sent, and
// ffmpeg decodes the whole stream without a word. The RTMP restream of the
// same transcode reaches nginx-rtmp as mono AAC too (the FLV sequence
// header carries the mono AudioSpecificConfig).
func TestE2EMonoOpusToAAC(t *testing.T) {
	if defaultAudio() != "aac" {
		t.Skip("this build has no codec support")
	}
	n := startNginx(t)
	checkNoLeaks(t)
	// hls.always: the test reads the whole publish after it ended, which an
	// on-demand stream nobody watched while live does not keep.
	g := startGateway(t, fmt.Sprintf("hls:\n  always: true\nstreams:\n  - match: \"*\"\n    restream: [%q]\n", n.url("live/mono")))
	base := "http://" + g.HTTPAddr().String()
	const stream = "e2e/mono"
	hlsURL := base + "/hls/" + stream + "/index.m3u8"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, "../testdata/av-mono.ogg",
		whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil { // the stream ends: its last segment is listed
		t.Fatalf("WHIP DELETE: %v", err)
	}
	code, mv := get(t, hlsURL)
	if code != http.StatusOK {
		t.Fatalf("multivariant playlist: %d", code)
	}
	if !strings.Contains(mv, `CHANNELS="1"`) || !strings.Contains(mv, "mp4a.40.2") {
		t.Errorf("multivariant playlist does not say mono AAC:\n%s", mv)
	}
	p := runProbe(t, hlsURL, true)
	codec, _, frames, ok := p.stream("audio")
	if !ok || codec != "aac" {
		t.Fatalf("HLS audio %q, want aac", codec)
	}
	if d := float64(frames*1024) / 48000; d < 9.5 || d > 10.5 {
		t.Errorf("HLS holds %.3f s of AAC (%d frames), 10 s were sent", d, frames)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=channels",
		"-of", "csv=p=0", hlsURL).Output()
	if f := strings.Fields(string(out)); err != nil || len(f) == 0 || strings.Trim(strings.Join(f, ""), "1") != "" {
		t.Errorf("ffprobe channels %q (%v), want 1", out, err)
	}
	if e := ffmpegDecodeErrors(hlsURL); e != "" {
		t.Errorf("ffmpeg decode of the HLS: %s", e)
	}

	waitFor(t, 5*time.Second, "the transcode stopped", func() bool { return g.AAC.Running() == 0 })
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files, want 1", len(recs))
	}
	checkFLVRecording(t, recs[0], fixtureSeconds-1, fixtureSeconds+1)
	out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name,channels",
		"-of", "csv=p=0", recs[0]).Output()
	if err != nil || strings.TrimSpace(string(out)) != "aac,1" {
		t.Errorf("RTMP recording: ffprobe %q (%v), want aac,1", out, err)
	}
}
