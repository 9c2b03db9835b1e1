package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whipcast/whipcast/internal/whipclient"
)

// lockedBuffer collects a child's output for the test log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// binDir holds the gateway binary built for this test run; TestMain
// removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	// Every goroutine a test started has an owner that stopped it (issue
	// 14): gateways closed, clients closed, servers shut down. goleak
	// retries for a while, so goroutines on their way out do not count.
	if code == 0 {
		if err := goleak.Find(leakOptions...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left running after the e2e tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakOptions are the goroutines allowed to outlive the tests: none.
var leakOptions []goleak.Option

// buildGateway builds cmd/whipcast once per test binary run.
var buildGateway = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "whipcast-e2e-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "whipcast")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/whipcast").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// runGateway starts the real binary with a config file and waits until it
// answers /healthz.
func runGateway(t *testing.T, bin, cfgPath, httpAddr string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	return runGatewayAt(t, bin, cfgPath, "http://"+httpAddr, http.DefaultClient)
}

// runGatewayAt is runGateway for a gateway at base (https:// with a
// client that trusts its certificate).
func runGatewayAt(t *testing.T, bin, cfgPath, base string, client *http.Client) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	var logs lockedBuffer
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	waitFor(t, 20*time.Second, "the gateway to answer /healthz", func() bool {
		res, err := client.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return cmd, &logs
}

// TestE2ERecordSIGKILL kills the real gateway process with SIGKILL in the
// middle of a recording to S3, starts it again on the same spool, and
// expects the spooled segments uploaded and a playable recording finalised.
func TestE2ERecordSIGKILL(t *testing.T) {
	v := startVersitygw(t)
	bin, err := buildGateway()
	if err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf("http:\n  addr: %s\nwebrtc:\n  port: %d\n  listen_ip: 127.0.0.1\n", httpAddr, freePort(t)) + v.config(spool)
	cfgPath := filepath.Join(t.TempDir(), "whipcast.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	first, logs := runGateway(t, bin, cfgPath, httpAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, "http://"+httpAddr+"/whip/rec/kill", "", fixtureVideo, fixtureAudio,
		whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	time.Sleep(6 * time.Second) // two or three segments recorded
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	t.Logf("first gateway killed: %v", first.ProcessState)
	_ = pub.Close()
	if d, _ := os.ReadDir(filepath.Join(spool, "sessions")); len(d) == 0 {
		t.Fatalf("the killed gateway left no open session to recover; its log:\n%s", logs)
	}

	second, logs2 := runGateway(t, bin, cfgPath, httpAddr)
	dir := waitRecording(t, v.store(t), "rec/kill", 30*time.Second)
	p := runProbe(t, filepath.Join(dir, "recording.mp4"), true)
	_, _, vframes, vok := p.stream("video")
	if !vok || vframes < 60 || p.duration() < 2 {
		t.Errorf("recovered recording: %d video frames, %.3f s; want at least the first 2 s", vframes, p.duration())
	}
	t.Logf("recovered after SIGKILL: %d video frames, %.3f s", vframes, p.duration())
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, "recording.mp4"), "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decode of the recovered recording.mp4: %v\n%s", err, out)
	}
	waitFor(t, 15*time.Second, "an empty spool", func() bool { return spoolObjects(t, spool) == 0 })
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("second gateway after SIGTERM: %v\n%s", err, logs2)
	}
}
