package config

// Runtime tunes the Go runtime the gateway runs on.
type Runtime struct {
	// GOGC is the garbage collector's target percentage (runtime/debug
	// SetGCPercent): the heap may grow this much over the live heap before
	// a collection. Default 25, not Go's 100: almost all of a gateway's heap
	// is the media of the live windows, in pointer-free byte blocks that cost
	// the collector nothing to mark, so collecting sooner saves most of the
	// headroom for some CPU (a 2.5 Mb/s stream at N=8: ~10.5 MiB RSS and
	// 100 % CPU at 100, ~8 MiB and ~115 % at 25; docs/BENCHMARKS.md). The
	// GOGC environment variable, when set, wins; GOMEMLIMIT works as usual.
	GOGC int `yaml:"gogc"`
}

func (c *Config) validateRuntime(bad func(key, format string, a ...any)) {
	if g := c.Runtime.GOGC; g < 10 || g > 1000 {
		bad("runtime.gogc", "%d is out of range 10-1000", g)
	}
}
