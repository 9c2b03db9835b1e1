package packager

import (
	"context"
	"sync"
	"time"
)

// waitLocked is how a request for something not made yet waits, for HLS
// blocking reloads and preload hints (RFC 8216bis 6.2.5.2) and for DASH
// chunks of the segment in production. It is called with mu held and
// returns with mu held: until ready() is true, the timeout passes, the
// request goes away (false) or closing is closed. notify returns the
// channel the stream closes on its next change; it is read under mu.
func waitLocked(ctx context.Context, mu *sync.Mutex, notify func() <-chan struct{}, closing <-chan struct{},
	timeout time.Duration, ready func() bool) bool {
	if ready() {
		return true
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		ch := notify()
		mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			mu.Lock()
			return ready()
		case <-ctx.Done():
			mu.Lock()
			return false
		case <-closing:
			mu.Lock()
			return ready()
		}
		mu.Lock()
		if ready() {
			return true
		}
	}
}
