package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type received struct {
	header http.Header
	body   []byte
}

// recorder is an httptest endpoint that answers each request with the next
// status of codes (then 204) and keeps what it got.
type recorder struct {
	mu    sync.Mutex
	got   []received
	codes []int
	calls atomic.Int32
	block chan struct{} // when set, each request waits for it
	in    chan struct{} // signalled when a request arrives
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.calls.Add(1)
	if r.in != nil {
		r.in <- struct{}{}
	}
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	code := http.StatusNoContent
	if len(r.codes) > 0 {
		code, r.codes = r.codes[0], r.codes[1:]
	}
	if code < 300 {
		r.got = append(r.got, received{req.Header.Clone(), b})
	}
	r.mu.Unlock()
	w.WriteHeader(code)
}

func (r *recorder) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// noLeaks fails the test if goroutines outlive it.
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(15 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

func server(t *testing.T, r *recorder) *httptest.Server {
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// client is a fresh client per test, so no idle connection outlives it.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestSenderPayloadAndSignature(t *testing.T) {
	noLeaks(t)
	rec := &recorder{}
	srv := server(t, rec)
	w, err := New(Settings{URL: srv.URL + "/hook?token=x", Secret: "s3cret", Client: client(t)})
	if err != nil {
		t.Fatal(err)
	}
	ev := []byte(`{"type":"motion.start","time":"2026-11-25T10:00:00Z","stream":"cam1","data":{"score":0.01}}`)
	if !w.Send("motion.start", ev) || !w.Send("motion.stop", []byte(`{"type":"motion.stop"}`)) {
		t.Fatal("not queued")
	}
	w.Close() // delivers what is queued
	got := rec.received()
	if len(got) != 2 || string(got[0].body) != string(ev) || got[1].header.Get(HeaderEvent) != "motion.stop" {
		t.Fatalf("received %d: %+v", len(got), got)
	}
	h := got[0].header
	if h.Get("Content-Type") != "application/json" || h.Get(HeaderEvent) != "motion.start" {
		t.Fatalf("headers %v", h)
	}
	ts := h.Get(HeaderTimestamp)
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)) > time.Minute {
		t.Fatalf("timestamp %q", ts)
	}
	if !Verify("s3cret", ts, got[0].body, h.Get(HeaderSignature)) || Verify("other", ts, got[0].body, h.Get(HeaderSignature)) {
		t.Fatalf("signature %q does not verify", h.Get(HeaderSignature))
	}
	var e map[string]any
	if err := json.Unmarshal(got[0].body, &e); err != nil || e["stream"] != "cam1" {
		t.Fatalf("body %s", got[0].body)
	}
	if st := w.Stats(); st.Delivered != 2 || st.Failed != 0 || st.Dropped != 0 {
		t.Fatalf("%+v", st)
	}
	// No secret, no signature header.
	w2, _ := New(Settings{URL: srv.URL, Client: client(t)})
	w2.Send("motion.start", ev)
	w2.Close()
	if got := rec.received(); len(got) != 3 || got[2].header.Get(HeaderSignature) != "" {
		t.Fatalf("unsigned: %+v", got)
	}
	if w.Send("x", nil) {
		t.Fatal("Send after Close queued")
	}
	w.Close() // twice is fine
}

func TestSenderRetries(t *testing.T) {
	noLeaks(t)
	rec := &recorder{codes: []int{500, 503, 200, 400, 500, 500, 500}}
	srv := server(t, rec)
	w, _ := New(Settings{URL: srv.URL, Backoff: 10 * time.Millisecond, Retries: 2, Client: client(t)})
	w.Send("motion.start", []byte(`{"n":1}`)) // 500, 503, then 200
	w.Send("motion.stop", []byte(`{"n":2}`))  // 400: not retried
	w.Send("motion.start", []byte(`{"n":3}`)) // 500 ×3: given up after 2 retries
	w.Close()
	if n := rec.calls.Load(); n != 7 {
		t.Errorf("%d requests, want 7", n)
	}
	if st := w.Stats(); st.Delivered != 1 || st.Failed != 2 {
		t.Errorf("%+v, want 1 delivered, 2 failed", st)
	}
	if got := rec.received(); len(got) != 1 || string(got[0].body) != `{"n":1}` {
		t.Errorf("%+v", got)
	}

	// A network error (nothing listening) is retried, then counted.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	w, _ = New(Settings{URL: url, Backoff: 5 * time.Millisecond, Retries: 1, Client: client(t)})
	w.Send("motion.start", []byte(`{}`))
	w.Close()
	if st := w.Stats(); st.Failed != 1 {
		t.Errorf("dead endpoint: %+v", st)
	}
}

// TestSenderQueueFull: a stuck endpoint never blocks Send; what does not
// fit is dropped and counted, and Close returns after Timeout anyway.
func TestSenderQueueFull(t *testing.T) {
	noLeaks(t)
	rec := &recorder{block: make(chan struct{}), in: make(chan struct{}, 16)}
	srv := server(t, rec)
	defer close(rec.block)
	w, _ := New(Settings{URL: srv.URL, Queue: 2, Timeout: 300 * time.Millisecond, Retries: -1, Client: client(t)})
	w.Send("motion.start", []byte(`{}`))
	<-rec.in // the first is in flight, held by the endpoint
	// The endpoint holds the first until the test ends: a Send that waited
	// for it would never return, so a generous bound tells blocking from slow.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < 5; i++ {
			w.Send("motion.stop", []byte(`{}`))
		}
	}()
	select {
	case <-sent:
	case <-time.After(15 * time.Second):
		t.Fatal("Send blocked on a stuck endpoint")
	}
	if st := w.Stats(); st.Dropped != 3 {
		t.Errorf("%+v, want 3 dropped (queue 2)", st)
	}
	start := time.Now()
	w.Close()
	// Far above the 300 ms timeout: only a Close that waited for the stuck
	// endpoint itself fails.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Close took %v with a stuck endpoint (timeout 300ms)", d)
	}
	if st := w.Stats(); st.Delivered != 0 || st.Failed != 3 {
		t.Errorf("after Close: %+v, want the in-flight and the 2 queued failed", st)
	}
}

func TestSenderBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://h/x", "http://", "//h/x", "h/x"} {
		if _, err := New(Settings{URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
