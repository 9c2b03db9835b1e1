package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/outputs/rtmp"
	"github.com/whipcast/whipcast/stages/codec"
)

// nginxRTMP is Debian's nginx with libnginx-mod-rtmp recording every publish.
type nginxRTMP struct {
	t    *testing.T
	dir  string
	port int
	conf string
	cmd  *exec.Cmd
	done chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNginx starts nginx-rtmp on a free loopback port. Without nginx the
// test is skipped, except under CI=true where it fails.
func startNginx(t *testing.T) *nginxRTMP {
	t.Helper()
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_rtmp_module.so"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx with libnginx-mod-rtmp is not installed (make deps-test installs it)")
		}
		t.Skip("nginx with libnginx-mod-rtmp is not installed")
	}
	if !codec.Available {
		t.Skip("built without codec support")
	}
	n := &nginxRTMP{t: t, dir: t.TempDir(), port: freePort(t)}
	if err := os.MkdirAll(filepath.Join(n.dir, "rec"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile("../testdata/nginx-rtmp.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("{{DIR}}", n.dir, "{{PORT}}", fmt.Sprint(n.port)).Replace(string(tmpl))
	n.conf = filepath.Join(n.dir, "nginx.conf")
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *nginxRTMP) start() {
	n.t.Helper()
	n.cmd = exec.Command("nginx", "-c", n.conf, "-p", n.dir, "-e", filepath.Join(n.dir, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	waitFor(n.t, 5*time.Second, "nginx listening", func() bool {
		c, err := net.Dial("tcp", n.url(""))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (n *nginxRTMP) stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
}

func (n *nginxRTMP) url(path string) string {
	if path == "" {
		return fmt.Sprintf("127.0.0.1:%d", n.port)
	}
	return fmt.Sprintf("rtmp://127.0.0.1:%d/%s", n.port, path)
}

// stopRecorded waits until nginx has closed its newest recording, then stops
// nginx and returns the recordings, oldest first. nginx closes a recording
// when it has read the publisher's last message and the end of the
// connection; exec_record_done (testdata/nginx-rtmp.conf) then touches
// FILE.done. The gateway reporting its output stopped is not enough: the last
// messages can still be in the rtmps test's TLS proxy or unread in nginx's
// socket, and stop's SIGKILL in the middle of ngx_rtmp_record_write_frame,
// which writes a tag body one received chunk (up to the client's chunk size) at a
// time, leaves a truncated last tag: ffmpeg "Invalid NAL unit size" and no
// duration from ffprobe.
func (n *nginxRTMP) stopRecorded() []string {
	n.t.Helper()
	const limit = 15 * time.Second
	deadline := time.Now().Add(limit)
	for {
		recs := n.recordings()
		if len(recs) > 0 {
			if _, err := os.Stat(recs[len(recs)-1] + ".done"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			n.t.Errorf("nginx did not close its recording within %v (%d files)", limit, len(recs))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.stop()
	return n.recordings()
}

// recordings lists the FLV files nginx wrote, oldest first.
func (n *nginxRTMP) recordings() []string {
	files, _ := filepath.Glob(filepath.Join(n.dir, "rec", "*.flv"))
	sort.Slice(files, func(i, j int) bool {
		a, _ := os.Stat(files[i])
		b, _ := os.Stat(files[j])
		return a.ModTime().Before(b.ModTime())
	})
	return files
}

func restreamState(g *gateway.Gateway, stream string, i int) rtmp.Status {
	st := g.Restream.Status(stream)
	if i >= len(st) {
		return rtmp.Status{}
	}
	return st[i]
}

// decodeErrors runs `ffmpeg -v error -i FILE -f null -` and returns what it
// prints (ffmpegDecodeErrors).
func decodeErrors(_ *testing.T, file string) string { return ffmpegDecodeErrors(file) }

func checkFLVRecording(t *testing.T, file string, minDur, maxDur float64) {
	t.Helper()
	p := runProbe(t, file, false)
	vc, vs, _, okV := p.stream("video")
	ac, as, _, okA := p.stream("audio")
	if !okV || !okA || vc != "h264" || ac != "aac" {
		t.Fatalf("%s: streams %+v, want h264 + aac", filepath.Base(file), p.Streams)
	}
	for _, s := range p.Streams {
		if s.CodecType == "audio" && s.SampleRt != "48000" {
			t.Errorf("audio sample rate %s, want 48000", s.SampleRt)
		}
	}
	if d := p.duration(); d < minDur || d > maxDur {
		t.Errorf("duration %.3f s, want %.1f–%.1f", d, minDur, maxDur)
	}
	t.Logf("%s: duration %.3f s, video starts %.3f s, audio %.3f s (A/V offset %+.0f ms)",
		filepath.Base(file), p.duration(), vs, as, (as-vs)*1000)
	if d := as - vs; d > 0.1 || d < -0.1 {
		t.Errorf("audio starts %.0f ms from video, want within 100 ms", d*1000)
	}
	if e := decodeErrors(t, file); e != "" {
		t.Errorf("ffmpeg decode of %s: %s", filepath.Base(file), e)
	}
	// The recording decodes from its first frame: the first video frame is a keyframe.
	out, _ := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-read_intervals", "%+#1",
		"-show_entries", "frame=key_frame", "-of", "csv=p=0", file).Output()
	if strings.TrimSpace(string(out)) != "1" {
		t.Errorf("%s: first video frame key_frame=%q, want 1", filepath.Base(file), out)
	}
}

// TestE2ERestreamRTMP publishes 10 s over WHIP and pushes it to nginx-rtmp and
// to a dead destination; the live one is unaffected by the dead one.
func TestE2ERestreamRTMP(t *testing.T) {
	n := startNginx(t)
	checkNoLeaks(t)
	dead := fmt.Sprintf("rtmp://127.0.0.1:%d/live/dead", freePort(t))
	g := startGateway(t, fmt.Sprintf("streams:\n  - match: \"rtmp*\"\n    restream: [%q, %q]\n",
		n.url("live/{stream}?secret=hunter2"), dead))
	base := "http://" + g.HTTPAddr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/rtmp1", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	waitFor(t, 5*time.Second, "RTMP output live", func() bool { return restreamState(g, "rtmp1", 0).State == rtmp.StateLive })
	waitFor(t, 15*time.Second, "dead output retrying", func() bool { return restreamState(g, "rtmp1", 1).State == rtmp.StateRetrying })
	// HLS, DASH and both RTMP outputs share one Opus→AAC transcode.
	if n := g.AAC.Running(); n != 1 {
		t.Errorf("%d Opus→AAC transcodes running for one stream, want 1", n)
	}
	for _, st := range g.Restream.Status("rtmp1") {
		if strings.Contains(st.URL, "hunter2") || strings.Contains(st.URL, "rtmp1") || strings.Contains(st.LastError, "hunter2") {
			t.Errorf("status shows the stream key: %+v", st)
		}
	}
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "outputs stopped", func() bool { return len(g.Restream.Status("rtmp1")) == 0 })
	waitFor(t, 5*time.Second, "the transcode stopped", func() bool { return g.AAC.Running() == 0 })
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files, want 1", len(recs))
	}
	checkFLVRecording(t, recs[0], fixtureSeconds-1, fixtureSeconds+1)
}

// TestE2ERestreamRTMPReconnect stops nginx while live: the output goes to
// retrying, and when nginx is back, live again with a recording that
// decodes from its first frame.
func TestE2ERestreamRTMPReconnect(t *testing.T) {
	n := startNginx(t)
	checkNoLeaks(t)
	g := startGateway(t, fmt.Sprintf("streams:\n  - restream: [%q]\n", n.url("live/{stream}")))
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/cam2", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	waitFor(t, 5*time.Second, "RTMP output live", func() bool { return restreamState(g, "cam2", 0).State == rtmp.StateLive })
	time.Sleep(2 * time.Second)
	n.stop()
	stoppedAt := time.Now()
	waitFor(t, 15*time.Second, "retrying after nginx stopped", func() bool { return restreamState(g, "cam2", 0).State == rtmp.StateRetrying })
	t.Logf("retrying %v after nginx stopped: %s", time.Since(stoppedAt).Round(time.Millisecond), restreamState(g, "cam2", 0).LastError)
	time.Sleep(time.Second)
	n.start()
	waitFor(t, 5*time.Second, "live again", func() bool { return restreamState(g, "cam2", 0).State == rtmp.StateLive })
	if c := restreamState(g, "cam2", 0).Connects; c < 2 {
		t.Errorf("%d connects, want 2+", c)
	}
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	waitFor(t, 5*time.Second, "outputs stopped", func() bool { return len(g.Restream.Status("cam2")) == 0 })
	recs := n.stopRecorded()
	if len(recs) != 2 {
		t.Fatalf("nginx recorded %d files, want 2", len(recs))
	}
	checkFLVRecording(t, recs[1], 1, fixtureSeconds-3)
}
