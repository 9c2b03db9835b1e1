package rtmp

import (
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with jitter: the n-th retry (from
// 0) waits Min·2ⁿ, capped at Max, less up to Jitter of itself chosen at
// random so that many pushers cut off at once do not reconnect in step.
type Backoff struct {
	// Min is the first delay. Default 500ms.
	Min time.Duration
	// Max caps the delay. Default 30s.
	Max time.Duration
	// Jitter is the random fraction taken off, 0–1. Default 0.2.
	Jitter float64
}

// Delay returns the wait before retry n (0-based); r is a random number in
// [0,1) (rand.Float64 in production, fixed in tests).
func (b Backoff) Delay(n int, r float64) time.Duration {
	lo, hi, j := b.Min, b.Max, b.Jitter
	if lo <= 0 {
		lo = 500 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	if j <= 0 || j > 1 {
		j = 0.2
	}
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	if d > hi {
		d = hi
	}
	return d - time.Duration(float64(d)*j*r)
}

// Clock is the time source of a Pusher, replaced by a fake in tests.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func defaultRand() float64 { return rand.Float64() }
