package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/whipcast/whipcast/internal/bench"
)

// TestE2EBenchSmoke runs the load tool (cmd/whipcast-bench) with one
// publisher for 5 s against an in-process gateway, with an HLS and a DASH
// reader, and the tool's RTMP sink that the gateway's restream rule pushes
// to: everything the report counts must have been seen, and the sink must
// have received the stream as H.264 + AAC with increasing timestamps. It
// asserts no figure of speed; docs/BENCHMARKS.md has those.
func TestE2EBenchSmoke(t *testing.T) {
	sink := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, fmt.Sprintf("streams:\n  - match: \"bench/*\"\n    restream: [\"rtmp://%s/live/{stream}\"]\n", sink))
	base := "http://" + g.HTTPAddr().String()
	var out, errb bytes.Buffer
	code := bench.Run([]string{
		"-n", "1", "-duration", "5s", "-label", "smoke",
		"-whip", base + "/whip/{name}",
		"-hls", base + "/hls/{name}/index.m3u8",
		"-dash", base + "/dash/{name}/manifest.mpd",
		"-name", "bench/s{i}",
		"-video", fixtureVideo, "-audio", fixtureAudio,
		"-pid", strconv.Itoa(os.Getpid()), // the gateway runs in this process
		"-rtmp-listen", sink,
	}, &out, &errb)
	t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	line, table, _ := strings.Cut(out.String(), "\n")
	var r bench.Report
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("first line is not the JSON report: %v", err)
	}
	switch {
	case r.Connected != 1 || r.Connect.N != 1:
		t.Errorf("connected %d, connect %+v", r.Connected, r.Connect)
	case r.FirstHLS.N != 1 || r.HLSFetches == 0 || r.HLSDelay.N == 0:
		t.Errorf("HLS reader: first %+v, %d fetches, delays %+v, errors %q", r.FirstHLS, r.HLSFetches, r.HLSDelay, r.Errors)
	case r.FirstDASH.N != 1 || r.DASHFetches == 0 || r.DASHDelay.N == 0:
		t.Errorf("DASH reader: first %+v, %d fetches, delays %+v, errors %q", r.FirstDASH, r.DASHFetches, r.DASHDelay, r.Errors)
	case r.HLSErrors != 0 || r.DASHErrors != 0:
		t.Errorf("reader errors: HLS %d, DASH %d: %q", r.HLSErrors, r.DASHErrors, r.Errors)
	case r.VideoFrames == 0 || r.ExpectedFrames == 0 || r.ReceiverReports == 0:
		t.Errorf("publisher: %d of %d frames, %d receiver report blocks", r.VideoFrames, r.ExpectedFrames, r.ReceiverReports)
	case r.Cores <= 0 || r.PeakRSS <= 0:
		t.Errorf("process sampling: cores %v, peak RSS %d", r.Cores, r.PeakRSS)
	}
	const seconds, fps = 5, 30
	switch m := r.RTMP; {
	case m == nil || m.Streams != 1 || m.Connect.N != 1 || m.FirstVideo.N != 1 || m.FirstAudio.N != 1:
		t.Errorf("RTMP sink: %+v", m)
	case m.VideoCodecs["AVC"] != 1 || m.AudioCodecs["AAC"] != 1:
		t.Errorf("RTMP codecs: video %v, audio %v; want AVC and AAC", m.VideoCodecs, m.AudioCodecs)
	case m.NonMonotonic != 0:
		t.Errorf("RTMP: %d frames not after the one before", m.NonMonotonic)
	// The push starts at the first keyframe after the publish and ends with
	// the stream: at least 2 of the 5 s, never more frames than were sent.
	case m.VideoFrames < 2*fps || m.VideoFrames > r.VideoFrames:
		t.Errorf("RTMP: %d video frames of %d sent", m.VideoFrames, r.VideoFrames)
	case m.AudioFrames < 2*48000/1024 || m.AudioFrames > (seconds+1)*48000/1024:
		t.Errorf("RTMP: %d AAC frames for %d s", m.AudioFrames, seconds)
	case m.AVStart.Max > 100 || m.AVStart.P50 < -100:
		t.Errorf("RTMP: audio starts %+v ms from video", m.AVStart)
	}
	if !strings.Contains(table, "1 of 1 connected") || !strings.Contains(table, "RTMP sink") {
		t.Errorf("table:\n%s", table)
	}
}
