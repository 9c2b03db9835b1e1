package config

// Runtime tunes the Go runtime the gateway runs on.
type Runtime struct {
	// GOGC is the garbage collector's target percentage (runtime/debug
	// SetGCPercent): the heap may grow this much over the live heap before
	// a collection. Default 25, not Go's 100: almost all of a gateway's heap
	// is the media of the live windows, in pointer-free byte blocks that cost
	// the collector nothing to mark, so collecting sooner costs little CPU
	// and saves most of the headroom (a 2.5 Mb/s stream: ~10 MiB RSS at 100,
	// ~8 MiB at 25; docs/BENCHMARKS.md). The GOGC environment variable, when
	// set, wins; so does GOMEMLIMIT for the memory limit.
	GOGC int `yaml:"gogc"`
}

func (c *Config) validateRuntime(bad func(key, format string, a ...any)) {
	if g := c.Runtime.GOGC; g < 10 || g > 1000 {
		bad("runtime.gogc", "%d is out of range 10-1000", g)
	}
}
