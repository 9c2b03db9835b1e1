package ingest

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// checkNoLeaks fails the test if goroutines started after it was called are
// still running at cleanup (after a settle period).
func checkNoLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

type testEnv struct {
	reg  *media.Registry
	srv  *Server
	http *httptest.Server
}

// newTestEnv starts a Server on 127.0.0.1 with a free port and the WHIP
// handler on httptest, mounted like the web layer does.
func newTestEnv(t *testing.T, cfg Config, auth func(r *httpRequest, stream string) error) *testEnv {
	t.Helper()
	reg := media.NewRegistry()
	cfg.ListenIP = "127.0.0.1"
	cfg.IncludeLoopback = true
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv, err := NewServer(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := newMux(srv, auth)
	hs := httptest.NewServer(mux)
	env := &testEnv{reg: reg, srv: srv, http: hs}
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		reg.Close()
	})
	return env
}

func (e *testEnv) url(stream string) string { return e.http.URL + "/whip/" + stream }

// waitEmpty waits until no stream and no session is left.
func (e *testEnv) waitEmpty(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.reg.List()) > 0 || e.srv.Sessions() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %d streams, %d sessions", len(e.reg.List()), e.srv.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func crlf(s string) string { return strings.ReplaceAll(strings.TrimLeft(s, "\n"), "\n", "\r\n") }

func (s *Server) sessionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.sessions {
		ids = append(ids, id)
	}
	return ids
}

func (t *Timeline) hasSR(track int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tracks[track].aligned && t.haveOffset
}
