package config

import "time"

// Limits is the gateway's admission control: under overload it refuses new
// publishers (WHIP POST and room joins answer 503 with a Retry-After and the
// reason) instead of taking them on and losing packets on every stream.
// Only publishers count: WHEP viewers, HLS/DASH players and derived streams
// ({stream}/filtered, {room}/composite, bounded by their own limits) do not,
// but what they cost shows in the CPU and lag checks.
type Limits struct {
	// MaxPublishers is the most publishers at once: live WHIP sessions
	// (room participants included), publishes being negotiated, and streams
	// held for their publisher's reconnect (webrtc.reconnect_window). A
	// publish that continues a held stream, or takes over its own name,
	// replaces itself and is admitted at the limit. Default 100 (the
	// 720p 2.5 Mb/s streams this gateway carries on 2 cores,
	// docs/BENCHMARKS.md); 0 means no limit.
	MaxPublishers int `yaml:"max_publishers"`
	// MaxCPU refuses new publishers while the process's CPU over the last
	// 5 s is at or above this fraction of the cores it may use
	// (GOMAXPROCS, or a cgroup CPU quota when smaller). Default 0.9; 0
	// turns the check off.
	MaxCPU float64 `yaml:"max_cpu"`
	// MaxLag refuses new publishers while the Go scheduler's latency
	// (how long a runnable goroutine, such as the UDP read loop, waits for
	// a CPU: the 99th percentile over the last 5 s) is at or above this. It
	// catches a CPU starved by other processes, which MaxCPU cannot see.
	// A window of fewer than 1000 wake-ups reads 0 (a nearly idle process).
	// Default 50ms; 0 turns the check off.
	MaxLag time.Duration `yaml:"max_lag"`
}

func (c *Config) validateLimits(bad func(key, format string, a ...any)) {
	l := c.Limits
	if l.MaxPublishers < 0 || l.MaxPublishers > 1000000 {
		bad("limits.max_publishers", "%d is out of range 0-1000000", l.MaxPublishers)
	}
	if l.MaxCPU < 0 || l.MaxCPU > 1 {
		bad("limits.max_cpu", "%g is out of range 0-1 (a fraction of the cores)", l.MaxCPU)
	}
	if l.MaxLag < 0 || l.MaxLag > 10*time.Second {
		bad("limits.max_lag", "%s is out of range 0-10s", l.MaxLag)
	}
}
