package ingest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/media"
)

// newHoldingEnv is newTestEnv with a registry that holds a dropped
// publisher's stream for a minute, so a test can tell a freed name from a
// held one.
func newHoldingEnv(t *testing.T, cfg Config) (*Server, *media.Registry, *httptest.Server) {
	t.Helper()
	reg := media.NewRegistryWith(media.RegistrySettings{ReconnectWindow: time.Minute})
	cfg.ListenIP, cfg.IncludeLoopback, cfg.Logger = "127.0.0.1", true, quietLogger()
	srv, err := NewServer(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(newMux(srv, nil))
	t.Cleanup(func() {
		hs.Close()
		_ = srv.Close()
		reg.Close()
	})
	return srv, reg, hs
}

func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still running", what)
	}
}

// TestICETimeout: a publish whose peer never connects is ended by
// ICETimeout with ErrConnectTimeout; its stream was never published (no
// OnPublish, so no consumer and no stream.started), is not held for a
// reconnect, and the name takes a new publish.
func TestICETimeout(t *testing.T) {
	checkNoLeaks(t)
	srv, reg, hs := newHoldingEnv(t, Config{ICETimeout: 300 * time.Millisecond})
	var published atomic.Int32
	reg.OnPublish(func(s *media.Stream) { published.Add(1) })
	sess, _, err := srv.Publish(t.Context(), "never", crlf(testOffer))
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, sess.Done(), "the session that never connects")
	if !errors.Is(sess.Err(), ErrConnectTimeout) {
		t.Fatalf("ended with %v, want ErrConnectTimeout", sess.Err())
	}
	if n := published.Load(); n != 0 {
		t.Fatalf("OnPublish ran %d times for a publish that never carried media", n)
	}
	if _, ok := reg.Get("never"); ok || srv.Publishers() != 0 {
		t.Fatalf("the name is still taken: %d publishers", srv.Publishers())
	}
	if to := srv.Timeouts(); to != (Timeouts{PublishICE: 1}) {
		t.Fatalf("timeouts %+v, want one ICE", to)
	}
	resp, body := do(t, "POST", hs.URL+"/whip/never", "application/sdp", crlf(testOffer))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the name again: %d %q", resp.StatusCode, body)
	}
}

// TestPublishIdleTimeout: a publisher that connects (ICE, DTLS) but whose
// RTP never arrives is ended by PublishIdleTimeout with ErrPublishIdle,
// and its name is free at once.
func TestPublishIdleTimeout(t *testing.T) {
	checkNoLeaks(t)
	srv, reg, hs := newHoldingEnv(t, Config{PublishIdleTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Loss 1 drops every RTP packet the client sends; its RTCP still flows.
	c, err := whipclient.Publish(ctx, hs.URL+"/whip/mute", "", "../testdata/av.h264", "../testdata/av.ogg",
		whipclient.Options{LoopbackOnly: true, Loss: 1, Loop: 10, SkipDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	var sess *Session
	for _, id := range srv.sessionIDs() {
		sess, _ = srv.Session(id)
	}
	if sess == nil {
		t.Fatal("no session")
	}
	waitDone(t, sess.Done(), "the session without media")
	if !errors.Is(sess.Err(), ErrPublishIdle) {
		t.Fatalf("ended with %v, want ErrPublishIdle", sess.Err())
	}
	if !sess.connected.Load() {
		t.Fatal("the session never connected: this tested the ICE timeout")
	}
	if _, ok := reg.Get("mute"); ok {
		t.Fatal("the stream of a publish that sent nothing is held")
	}
	if to := srv.Timeouts(); to != (Timeouts{PublishIdle: 1}) {
		t.Fatalf("timeouts %+v, want one idle", to)
	}
}
