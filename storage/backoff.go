package storage

import (
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with full jitter: attempt n (from
// 0) waits a random time in [d/2, d] where d = min(Max, Min × 2^n), so many
// uploaders retrying together spread out instead of hitting a recovering
// server at once.
type Backoff struct {
	// Min is the first delay. Default 250ms.
	Min time.Duration
	// Max caps every delay. Default 10s.
	Max time.Duration
}

// Delay returns the wait before retry number attempt (0 for the first retry).
// rnd is in [0, 1); nil uses math/rand.
func (b Backoff) Delay(attempt int, rnd func() float64) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if rnd == nil {
		rnd = rand.Float64
	}
	return d/2 + time.Duration(rnd()*float64(d/2))
}
