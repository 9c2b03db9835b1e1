package bench

import (
	"math"
	"slices"
	"time"
)

// Summary is a distribution in milliseconds: how many samples, the median,
// the 95th percentile and the largest. A summary of no samples is all
// zero with N 0.
type Summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	Max float64 `json:"max_ms"`
}

// summarize sorts a copy of ds and reads its percentiles.
func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Summary{N: len(s), P50: ms(percentile(s, 50)), P95: ms(percentile(s, 95)), Max: ms(s[len(s)-1])}
}

// percentile is the nearest-rank percentile (p in 0..100) of sorted s: the
// smallest sample with at least p % of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
