package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
)

// TestE2ELossMediaMTX runs the lossy publish of TestE2ELoss10/5 against
// MediaMTX for the side-by-side figure in docs/BENCHMARKS.md. It needs a
// MediaMTX binary (built from source, nothing of it committed) named by
// WHIPCAST_MEDIAMTX, and is skipped without it. It asserts nothing of
// MediaMTX: it logs the frames its recording kept and its decode errors.
func TestE2ELossMediaMTX(t *testing.T) {
	bin := os.Getenv("WHIPCAST_MEDIAMTX")
	if bin == "" {
		t.Skip("WHIPCAST_MEDIAMTX (a MediaMTX binary) not set")
	}
	for _, loss := range []float64{0.10, 0.05} {
		t.Run(fmt.Sprintf("%.0f%%", loss*100), func(t *testing.T) {
			dir := t.TempDir()
			webPort, udpPort := freePort(t), freeUDPPort(t)
			cfg := fmt.Sprintf(`logLevel: warn
rtsp: no
rtmp: no
srt: no
hls: no
api: no
udpReadBufferSize: 4194304
webrtc: yes
webrtcAddress: 127.0.0.1:%d
webrtcLocalUDPAddress: 127.0.0.1:%d
webrtcLocalTCPAddress: ''
webrtcIPsFromInterfaces: no
webrtcAdditionalHosts: [127.0.0.1]
pathDefaults:
  record: yes
  recordPath: %s/%%path/%%Y-%%m-%%d_%%H-%%M-%%S-%%f
  recordFormat: fmp4
  recordSegmentDuration: 1h
paths:
  all_others:
`, webPort, udpPort, dir)
			conf := filepath.Join(dir, "mediamtx.yml")
			if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, conf)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			defer func() { _ = cmd.Process.Kill(); <-done }()
			waitFor(t, 10*time.Second, "MediaMTX listening", func() bool {
				c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", webPort))
				if err == nil {
					c.Close()
				}
				return err == nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			pub, err := whipclient.Publish(ctx, fmt.Sprintf("http://127.0.0.1:%d/loss/whip", webPort), "", lossVideo, fixtureAudio,
				whipclient.Options{LoopbackOnly: true, Loop: lossLoops, Loss: loss, Jitter: lossJitter, Seed: 11})
			if err != nil {
				t.Fatal(err)
			}
			sent, err := pub.Wait()
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			_ = pub.Close()
			time.Sleep(2 * time.Second) // the recording is closed with the path
			files, _ := filepath.Glob(filepath.Join(dir, "loss", "*.mp4"))
			if len(files) == 0 {
				t.Fatalf("MediaMTX recorded nothing in %s", dir)
			}
			frames := 0
			for _, f := range files {
				p := runProbe(t, f, true)
				_, start, n, _ := p.stream("video")
				t.Logf("%s: %d video frames from %.3f s, %.3f s", filepath.Base(f), n, start, p.duration())
				frames += n
			}
			var errs int
			for _, f := range files {
				if e := ffmpegDecodeErrors(f); e != "" {
					errs += len(strings.Split(e, "\n"))
					t.Logf("ffmpeg on %s:\n%s", filepath.Base(f), e)
				}
			}
			t.Logf("MediaMTX at %.0f %% loss: recording kept %d of %d video frames (%.1f %%), %d ffmpeg error lines; link dropped %d, client resent %d NACKed",
				loss*100, frames, sent.VideoFrames, 100*float64(frames)/float64(sent.VideoFrames), errs, sent.Dropped, sent.NACKs)
		})
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
