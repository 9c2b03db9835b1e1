// Package webhook delivers events to an HTTP endpoint (motion webhooks): a
// bounded queue per endpoint drained by one goroutine, so the detector that
// sends never waits on the network.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Headers of each POST.
const (
	// HeaderEvent is the event type, e.g. motion.start.
	HeaderEvent = "X-Whipcast-Event"
	// HeaderTimestamp is the Unix time (seconds) the request was signed at.
	HeaderTimestamp = "X-Whipcast-Timestamp"
	// HeaderSignature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)),
	// present when a secret is set.
	HeaderSignature = "X-Whipcast-Signature"
)

// Settings configures a Sender. Zero values mean the defaults.
type Settings struct {
	// URL receives the POSTs; http or https.
	URL string
	// Secret, when set, signs each request (HeaderSignature).
	Secret string
	// Queue is how many events may wait; past it events are dropped and
	// counted. Default 64.
	Queue int
	// Timeout bounds one request, and the time Close gives queued events.
	// Default 5s.
	Timeout time.Duration
	// Retries after a network error or a 5xx/429 answer. Default 3;
	// negative: none.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next.
	// Default 500ms.
	Backoff time.Duration
	// Client sends the requests. Default a client of its own that follows
	// no redirects.
	Client *http.Client
	// Logger; default discards. The URL is logged as scheme://host only.
	Logger *slog.Logger
}

// Stats counts a Sender's events.
type Stats struct {
	// Delivered got a 2xx answer.
	Delivered uint64
	// Failed were given up after the retries (or refused with a 4xx).
	Failed uint64
	// Dropped found the queue full (or came after Close).
	Dropped uint64
}

// Sender posts events to one URL in order, from its own goroutine.
type Sender struct {
	s      Settings
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	q      chan message
	closed bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	delivered, failed, dropped atomic.Uint64
	failing                    bool // owned by the goroutine: log a failure once per outage
}

type message struct {
	typ  string
	body []byte
}

// New checks the URL and starts the sender's goroutine; Close stops it.
func New(s Settings) (*Sender, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook: the URL must be http:// or https:// with a host")
	}
	if s.Queue <= 0 {
		s.Queue = 64
	}
	if s.Timeout <= 0 {
		s.Timeout = 5 * time.Second
	}
	switch {
	case s.Retries == 0:
		s.Retries = 3
	case s.Retries < 0:
		s.Retries = 0
	}
	if s.Backoff <= 0 {
		s.Backoff = 500 * time.Millisecond
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := s.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Sender{s: s, log: log.With("webhook", u.Scheme+"://"+u.Host), client: client,
		q: make(chan message, s.Queue), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go w.run()
	return w, nil
}

// Send queues body (a JSON document) as an event of type typ. It never
// blocks: with the queue full the event is dropped, counted, and the first
// drop of a run of them logged. It reports whether the event was queued.
func (w *Sender) Send(typ string, body []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		select {
		case w.q <- message{typ, body}:
			return true
		default:
		}
	}
	if w.dropped.Add(1) == 1 {
		w.log.Warn("webhook queue full: dropping events (counted in its stats)", "queue", w.s.Queue)
	}
	return false
}

// Stats returns the counters so far.
func (w *Sender) Stats() Stats {
	return Stats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load()}
}

// Close stops taking events, gives those queued up to Settings.Timeout in
// all to be delivered (a stream's last motion.stop comes just before its
// detector stops), then stops the goroutine and waits for it. Safe to call
// more than once.
func (w *Sender) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.q)
	}
	w.mu.Unlock()
	t := time.AfterFunc(w.s.Timeout, w.cancel)
	<-w.done
	t.Stop()
	w.cancel()
}

func (w *Sender) run() {
	defer close(w.done)
	for m := range w.q {
		w.deliver(m)
	}
}

// deliver posts m, retrying network errors, 5xx and 429 with backoff.
func (w *Sender) deliver(m message) {
	wait := w.s.Backoff
	var err error
	for attempt := 0; ; attempt++ {
		var retry bool
		retry, err = w.post(m)
		if err == nil {
			w.delivered.Add(1)
			if w.failing {
				w.failing = false
				w.log.Info("webhook delivers again")
			}
			return
		}
		if !retry || attempt >= w.s.Retries || w.ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(wait):
		case <-w.ctx.Done():
		}
		wait *= 2
	}
	w.failed.Add(1)
	if !w.failing {
		w.failing = true
		w.log.Warn("webhook event not delivered (further failures are counted, not logged, until one succeeds)", "event", m.typ, "err", err)
	}
}

// post sends one request; retry says whether a later attempt may succeed.
func (w *Sender) post(m message) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.s.URL, bytes.NewReader(m.body))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "whipcast-webhook")
	req.Header.Set(HeaderEvent, m.typ)
	req.Header.Set(HeaderTimestamp, ts)
	if w.s.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(w.s.Secret, ts, m.body))
	}
	res, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry a token: never in the logs
		}
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return false, nil
	case res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("HTTP %d", res.StatusCode)
	default:
		return false, fmt.Errorf("HTTP %d (not retried)", res.StatusCode)
	}
}

// Sign is the HeaderSignature value of body sent at timestamp ts (Unix
// seconds, as in HeaderTimestamp): "sha256=" + hex(HMAC-SHA256(secret,
// ts + "." + body)). A receiver recomputes it over the raw body, compares in
// constant time and refuses old timestamps (replays).
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether sig is the signature of body at ts under secret.
func Verify(secret, ts string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(sig))
}
