package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/testca"
)

// lockedWriter is stderr shared by run's goroutines and the test.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// SIGHUP rereads http.tls.cert and key: the next handshake gets the new
// certificate. Without http.tls.cert it is logged and the process goes on
// (the default action of SIGHUP would end it).
func TestRunSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	first := ca.Issue(t, dir, "srv", "127.0.0.1")
	base := []string{"WHIPCAST_WEBRTC_LISTEN_IP=127.0.0.1", "WHIPCAST_STORAGE_PATH=" + dir + "/rec", "WHIPCAST_STORAGE_SPOOL_DIR=" + dir + "/spool"}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"plain http", nil, "SIGHUP: nothing to reload"},
		{"https", []string{"WHIPCAST_HTTP_TLS_CERT=" + first.CertPath, "WHIPCAST_HTTP_TLS_KEY=" + first.KeyPath}, "TLS certificate reloaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stderr lockedWriter
			started := make(chan *gateway.Gateway, 1)
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"--http", "127.0.0.1:0", "--webrtc-port", "0"}, append(tc.env, base...), &stderr,
					func(g *gateway.Gateway) { started <- g })
			}()
			var g *gateway.Gateway
			select {
			case g = <-started:
			case code := <-done:
				t.Fatalf("exited %d before serving: %s", code, stderr.String())
			}
			var next *testca.Leaf
			if tc.env != nil {
				next = ca.Issue(t, dir, "srv", "127.0.0.1") // the same paths, renewed
			}
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(stderr.String(), tc.want) {
				if time.Now().After(deadline) {
					t.Fatalf("no %q in the log within 10 s: %s", tc.want, stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if next != nil {
				c, err := tls.Dial("tcp", g.HTTPAddr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
				if err != nil {
					t.Fatal(err)
				}
				serial := c.ConnectionState().PeerCertificates[0].SerialNumber
				c.Close()
				if serial.Cmp(next.Cert.SerialNumber) != 0 {
					t.Errorf("after SIGHUP the handshake gets serial %s, want %s", serial, next.Cert.SerialNumber)
				}
			}
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatal("did not stop within 15 s")
			}
		})
	}
}
