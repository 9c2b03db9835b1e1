package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/outputs/rtmp"
	"github.com/whipcast/whipcast/web"
)

const (
	// lossVideo is 10 s of 1280x720 at 30 fps with a keyframe every 4 s
	// (testdata/README.md), sent twice: 20 s, 600 frames. One packet given
	// up on costs everything to the next keyframe, up to 120 frames (20 %),
	// with a sender that does not answer PLI.
	lossVideo   = "../testdata/loss720.h264"
	lossLoops   = 2
	lossJitter  = 30 * time.Millisecond
	lossSeconds = 2 * fixtureSeconds
)

// TestE2ELoss10 publishes 20 s of 720p through a link that drops 10 % of
// the RTP packets (retransmissions included) and delays each by up to
// 30 ms, from a sender that answers NACKs but never PLI (like OBS). HLS,
// DASH, RTMP (nginx-rtmp's recording) and the recording must each keep
// ≥ 92 % of the frames sent and decode with no error.
func TestE2ELoss10(t *testing.T) {
	testLoss(t, 0.10, 0.92, true)
}

// TestE2ELoss5 is the same at 5 % loss, ≥ 97 % kept, on HLS only (the
// outputs share one ingest: TestE2ELoss10 covers each of them).
func TestE2ELoss5(t *testing.T) {
	testLoss(t, 0.05, 0.97, false)
}

func testLoss(t *testing.T, loss, keep float64, allOutputs bool) {
	checkNoLeaks(t)
	stream := fmt.Sprintf("loss%02.0f", loss*100)
	// The whole publish is read after its end: packaged from its start
	// (hls.always; with all outputs, the recording rule does it).
	cfg := "hls:\n  always: true\n"
	var n *nginxRTMP
	recDir := t.TempDir()
	if allOutputs {
		n = startNginx(t)
		cfg = fmt.Sprintf(`storage:
  type: local
  path: %s
  spool_dir: %s
streams:
  - match: "loss*"
    record: true
    restream: [%q]
`, filepath.Join(recDir, "rec"), filepath.Join(recDir, "spool"), n.url("live/{stream}"))
	}
	g := startGateway(t, cfg)
	base := "http://" + g.HTTPAddr().String()
	hlsURL := base + "/hls/" + stream + "/index.m3u8"
	mpdURL := base + "/dash/" + stream + "/manifest.mpd"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", lossVideo, fixtureAudio, whipclient.Options{
		LoopbackOnly: true, Loop: lossLoops, Loss: loss, Jitter: lossJitter, Seed: 11,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if allOutputs {
		waitFor(t, 10*time.Second, "RTMP output live", func() bool { return restreamState(g, stream, 0).State == rtmp.StateLive })
	}
	sent, err := pub.Wait()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	// The last repairs come within the reorder buffer's wait (≤ 1 s).
	time.Sleep(time.Second)
	in := ingestInfo(t, base, stream)
	if err := pub.Close(); err != nil {
		t.Fatalf("WHIP DELETE: %v", err)
	}
	t.Logf("sent %d video frames; the link dropped %d packets, the client answered %d NACKed sequence numbers, got %d PLIs",
		sent.VideoFrames, sent.Dropped, sent.NACKs, sent.PLIs)
	if in == nil {
		t.Fatal("no ingest stats in /v1/streams")
	}
	t.Logf("ingest: %d RTP packets, %d missing, %d repaired (%d RTX), %d lost after repair, %d late; %d NACKs in %d RTCP packets, RTT %.1f ms; %d frames dropped, %.2f s frozen, %d PLIs",
		in.RTPPackets, in.PacketsMissing, in.PacketsRepaired, in.Retransmissions, in.PacketsLost, in.PacketsLate,
		in.NACKs, in.NACKPackets, in.RTT*1000, in.FramesDropped, in.FreezeSeconds, in.PLIs)
	// The link did drop, and the gateway saw it and asked for it back:
	// a test that lost nothing would prove nothing.
	if sent.Dropped == 0 || in.PacketsMissing == 0 || in.NACKs == 0 || sent.NACKs == 0 || in.PacketsRepaired == 0 {
		t.Fatalf("no loss and repair happened: dropped %d, missing %d, NACKs %d/%d, repaired %d",
			sent.Dropped, in.PacketsMissing, in.NACKs, sent.NACKs, in.PacketsRepaired)
	}
	if in.Retransmissions == 0 {
		t.Errorf("no RTX retransmission reached the reorder buffer")
	}

	minFrames := int(keep * float64(sent.VideoFrames))
	check := func(what, input string) {
		t.Helper()
		p := runProbe(t, input, true)
		_, _, frames, ok := p.stream("video")
		if !ok {
			t.Errorf("%s: no video", what)
			return
		}
		t.Logf("%s: %d of %d video frames (%.1f %%), %.3f s", what, frames, sent.VideoFrames,
			100*float64(frames)/float64(sent.VideoFrames), p.duration())
		if frames < minFrames || frames > sent.VideoFrames {
			t.Errorf("%s: %d video frames, want %d–%d (%.0f %% of %d sent)", what, frames, minFrames, sent.VideoFrames, keep*100, sent.VideoFrames)
		}
		if e := ffmpegDecodeErrors(input); e != "" {
			t.Errorf("ffmpeg decode of %s:\n%s", what, e)
		}
	}

	waitFor(t, 5*time.Second, "EXT-X-ENDLIST", func() bool {
		_, mv := get(t, hlsURL)
		for _, u := range mediaPlaylists(mv) {
			if strings.Contains(u, "video") {
				_, pl := get(t, base+"/hls/"+stream+"/"+u)
				return strings.Contains(pl, "#EXT-X-ENDLIST")
			}
		}
		return false
	})
	check("HLS", hlsURL)
	if !allOutputs {
		return
	}
	waitFor(t, 5*time.Second, "a static MPD", func() bool {
		_, m := getMPD(t, mpdURL)
		return m != nil && m.Type == "static"
	})
	check("DASH", mpdURL)
	waitFor(t, 5*time.Second, "outputs stopped", func() bool { return len(g.Restream.Status(stream)) == 0 })
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files, want 1", len(recs))
	}
	check("RTMP", recs[0])
	mp4 := finishedRecordingMP4(t, filepath.Join(recDir, "rec"))
	check("recording", mp4)
}

// ingestInfo reads the ingest counters of stream from /v1/streams.
func ingestInfo(t *testing.T, base, stream string) *web.IngestInfo {
	t.Helper()
	res, err := http.Get(base + "/v1/streams")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Streams []web.StreamInfo `json:"streams"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, s := range body.Streams {
		if s.Name == stream {
			return s.Ingest
		}
	}
	return nil
}

// TestE2ELossAnswerPLI publishes from a sender that answers PLI with its
// next keyframe but never NACKs (so every lost packet stays lost), at 1 %
// loss with 30 ms jitter. Each loss freezes the video only until the
// keyframe it asks for: the longest hole in the HLS output's video
// timestamps stays far below the file's 4 s GOP, which is what a sender
// that ignores PLI costs.
func TestE2ELossAnswerPLI(t *testing.T) {
	checkNoLeaks(t)
	const stream = "losspli"
	// Keyframes come often: a window that holds the whole publish.
	// The whole publish is read after its end: packaged from its start
	// (hls.always), not from a first player's request.
	g := startGateway(t, "hls:\n  window: 60\n  always: true\n")
	base := "http://" + g.HTTPAddr().String()
	hlsURL := base + "/hls/" + stream + "/index.m3u8"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", lossVideo, fixtureAudio, whipclient.Options{
		// Answering a PLI skips to the file's next keyframe, so the file
		// runs out early: loop it and stop after 20 s of frames.
		LoopbackOnly: true, Loop: 50, MaxDuration: lossSeconds * time.Second,
		Loss: 0.01, Jitter: lossJitter, Seed: 12, AnswerPLI: true, NoNACK: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sent, err := pub.Wait()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	time.Sleep(time.Second)
	in := ingestInfo(t, base, stream)
	if err := pub.Close(); err != nil {
		t.Fatalf("WHIP DELETE: %v", err)
	}
	if in == nil {
		t.Fatal("no ingest stats in /v1/streams")
	}
	t.Logf("sent %d video frames, skipped %d to answer %d PLIs; the link dropped %d packets", sent.VideoFrames, sent.Skipped, sent.PLIs, sent.Dropped)
	t.Logf("ingest: %d missing, %d lost; %d frames dropped, %.2f s frozen, %d PLIs",
		in.PacketsMissing, in.PacketsLost, in.FramesDropped, in.FreezeSeconds, in.PLIs)
	if in.FramesDropped == 0 || sent.Skipped == 0 {
		t.Fatalf("no loss was answered by a keyframe: %d frames dropped, %d skipped", in.FramesDropped, sent.Skipped)
	}
	waitFor(t, 5*time.Second, "EXT-X-ENDLIST", func() bool {
		_, mv := get(t, hlsURL)
		for _, u := range mediaPlaylists(mv) {
			if strings.Contains(u, "video") {
				_, pl := get(t, base+"/hls/"+stream+"/"+u)
				return strings.Contains(pl, "#EXT-X-ENDLIST")
			}
		}
		return false
	})
	pts := videoPTS(t, hlsURL)
	// Holes: more than two frame intervals between consecutive frames.
	var maxGap, sum float64
	holes := 0
	for i := 1; i < len(pts); i++ {
		if g := pts[i] - pts[i-1]; g > 2.0/30 {
			maxGap = max(maxGap, g)
			sum += g
			holes++
		}
	}
	if holes == 0 {
		t.Fatal("no hole in the HLS video: the loss did not reach it")
	}
	mean := sum / float64(holes)
	t.Logf("HLS: %d of %d video frames, %d holes, %.3f s on average, the longest %.3f s", len(pts), sent.VideoFrames, holes, mean, maxGap)
	// A hole is waited for (RTT-sized), then one round trip brings the
	// keyframe, so a hole lasts a fraction of a second; a keyframe hit too
	// is asked for again. A sender that ignores PLI leaves holes to its
	// next keyframe: 2 s on average with this 4 s GOP, nearly 4 s at worst.
	if mean > 1 || maxGap > 3 {
		t.Errorf("holes of %.3f s on average, %.3f s at most: want ≤ 1 s and ≤ 3 s with a sender that answers PLI", mean, maxGap)
	}
	if e := ffmpegDecodeErrors(hlsURL); e != "" {
		t.Errorf("ffmpeg decode of HLS:\n%s", e)
	}
}

// videoPTS returns the presentation times of input's video packets, in
// order.
func videoPTS(t *testing.T, input string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time",
		"-of", "csv=p=0", input).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", input, err)
	}
	var pts []float64
	for _, l := range strings.Fields(string(out)) {
		if v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64); err == nil {
			pts = append(pts, v)
		}
	}
	sort.Float64s(pts)
	return pts
}

// finishedRecordingMP4 waits for the one recording under dir to finish and
// returns its recording.mp4. The multivariant playlist is the last object
// of a finished recording (waitRecording).
func finishedRecordingMP4(t *testing.T, dir string) string {
	t.Helper()
	var mp4 string
	waitFor(t, 20*time.Second, "the finished recording", func() bool {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "index.m3u8" {
				mp4 = filepath.Join(filepath.Dir(p), "recording.mp4")
			}
			return nil
		})
		return mp4 != ""
	})
	return mp4
}
