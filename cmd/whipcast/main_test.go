package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/gateway"
)

func TestRunRefusesBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("hls:\n  window: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{args: []string{"--nope"}, want: "flag provided but not defined"},
		{args: []string{"extra"}, want: `unexpected argument "extra"`},
		{args: []string{"--config", bad}, want: "hls.window"},
		{args: []string{"--config", bad + ".missing"}, want: "no such file"},
		{args: []string{"--public-ip", "nope"}, want: "webrtc.public_ips[0]"},
		{args: []string{"--webrtc-port", "70000"}, want: "webrtc.port"},
		{env: []string{"WHIPCAST_HTTP_ADDRESS=:1"}, want: "names no key"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, tc.env, &stderr, nil)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestRunServesAndStopsOnSignal(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	started := make(chan *gateway.Gateway, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--http", "127.0.0.1:0", "--webrtc-port", "0", "--public-ip", "203.0.113.7"},
			[]string{"WHIPCAST_WEBRTC_LISTEN_IP=127.0.0.1", "WHIPCAST_STORAGE_PATH=" + dir + "/rec", "WHIPCAST_STORAGE_SPOOL_DIR=" + dir + "/spool"}, &stderr, func(g *gateway.Gateway) { started <- g })
	}()
	var g *gateway.Gateway
	select {
	case g = <-started:
	case code := <-done:
		t.Fatalf("exited %d before serving: %s", code, stderr.String())
	}
	res, err := http.Get("http://" + g.HTTPAddr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", res.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after shutdown: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop within 15 s of the signal")
	}
	if !strings.Contains(stderr.String(), "whipcast running") {
		t.Fatalf("no start line in the log: %s", stderr.String())
	}
}
