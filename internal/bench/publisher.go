package bench

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/internal/wish"
)

// streamResult is what one publisher and its readers saw.
type streamResult struct {
	name      string
	err       string
	connected bool
	refusals  int           // 503s before it got in (or gave up), with -retry
	post      time.Time     // the WHIP POST was sent (the last one, with -retry)
	connect   time.Duration // POST → PeerConnection connected
	done      time.Time     // sending ended
	stats     whipclient.Stats
	sent      time.Duration // how long it sent
	hls, dash *readerResult
}

// postClock notes when the first POST goes out, so times are counted from
// the WHIP request itself rather than from before ICE gathering.
type postClock struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	post time.Time
}

func (p *postClock) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost {
		p.mu.Lock()
		if p.post.IsZero() {
			p.post = time.Now()
		}
		p.mu.Unlock()
	}
	return p.rt.RoundTrip(req)
}

func (p *postClock) at() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.post
}

// defaultRetryAfter is the wait before trying again after a 503 without
// a Retry-After.
const defaultRetryAfter = 5 * time.Second

// publishRetrying publishes stream i, and with c.Retry tries again after a
// 503's Retry-After while c.Retry since the first POST allows; res gets the
// last POST's time and the refusals.
func publishRetrying(ctx context.Context, c Config, name string, i int, client *http.Client, res *streamResult) (*whipclient.Client, error) {
	first := time.Now()
	for {
		clock := &postClock{rt: client.Transport}
		if clock.rt == nil {
			clock.rt = http.DefaultTransport
		}
		pctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
		begin := time.Now()
		pub, err := whipclient.Publish(pctx, expand(c.WHIP, name, i), c.Token, c.Video, c.Audio, whipclient.Options{
			LoopbackOnly: !c.AnyInterface,
			Loop:         1 << 30, // MaxDuration ends it
			MaxDuration:  c.Duration,
			FPS:          c.FPS,
			HTTPClient:   &http.Client{Transport: clock, Timeout: c.ConnectTimeout},
			AnswerPLI:    c.AnswerPLI,
		})
		cancel()
		res.post = clock.at()
		if res.post.IsZero() {
			res.post = begin
		}
		var se *wish.StatusError
		if err == nil || !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
			return pub, err
		}
		res.refusals++
		wait := se.RetryAfter
		if wait <= 0 {
			wait = defaultRetryAfter
		}
		if time.Since(first)+wait > c.Retry || !sleep(ctx, wait) {
			return nil, err
		}
	}
}

// runStream publishes stream i (after its phase offset), runs its readers
// while it sends, and stops them when it is done.
func runStream(ctx context.Context, c Config, i int, client *http.Client) streamResult {
	name := streamName(c.Name, i)
	res := streamResult{name: name}
	if !sleep(ctx, c.offset(i)) {
		res.err = ctx.Err().Error()
		return res
	}
	pub, err := publishRetrying(ctx, c, name, i, client, &res)
	if err != nil {
		res.err = err.Error()
		return res
	}
	res.connected = true
	res.connect = time.Since(res.post)

	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if c.HLS != "" {
		r := newHLSReader(client, expand(c.HLS, name, i), res.post)
		wg.Add(1)
		go func() { defer wg.Done(); v := r.run(rctx); res.hls = &v }()
	}
	if c.DASH != "" {
		r := newDASHReader(client, expand(c.DASH, name, i), res.post)
		wg.Add(1)
		go func() { defer wg.Done(); v := r.run(rctx); res.dash = &v }()
	}
	closed := make(chan struct{})
	go func() { // the run ending early stops the publisher too
		defer close(closed)
		<-rctx.Done()
		_ = pub.Close()
	}()
	stats, err := pub.Wait()
	res.done = time.Now()
	res.sent = res.done.Sub(stats.Start)
	stop()
	wg.Wait()
	<-closed
	if cerr := pub.Close(); err == nil && cerr != nil && ctx.Err() == nil {
		err = cerr
	}
	res.stats = pub.Stats()
	if err != nil {
		res.err = err.Error()
	}
	return res
}
