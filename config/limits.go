package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

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
	// PublisherCost is what one publisher is estimated to cost, in cores,
	// for the projected CPU check: MaxCPU also refuses when the measured
	// CPU plus the publishers not yet in that measurement (admitted within
	// the last 5 s or since the last sample, each for the part of the
	// window it was not there) at this cost each reaches it, so a burst of
	// arrivals is refused before its load shows. Once 8 publishers have
	// been measured for a whole window, their measured mean replaces this
	// estimate. 0 (the default) chooses by audio.codec: 0.02 with aac
	// (Opus→AAC once per stream, HLS and DASH players, at 720p 2.5 Mb/s:
	// docs/BENCHMARKS.md), 0.012 with opus (passthrough); else 0.001-16.
	PublisherCost float64 `yaml:"publisher_cost"`
	// MaxMachineCPU refuses new publishers while the cores other processes
	// use (the machine's busy cores from /proc/stat, the host's in a
	// container, less this process's: the least of any second of the last
	// 5 s) plus this process's CPU, with the publishers admitted since the
	// last sample at the cost per publisher, reach this fraction of the
	// machine's cores. It sees the CPU other processes take, which MaxCPU
	// does not, before the packets feel it (MaxLag). It applies once the
	// gateway carries 8 publishers: below that one more costs little, and a
	// machine busy with a build or a browser still takes a publish. Linux
	// only. Default 0.9; 0 turns the check off.
	MaxMachineCPU float64 `yaml:"max_machine_cpu"`
	// MaxLag refuses new publishers while the Go scheduler's latency
	// (how long a runnable goroutine, such as the UDP read loop, waits for
	// a CPU: the 99th percentile over the last 5 s) is at or above this. It
	// catches a CPU starved by other processes, which MaxCPU cannot see.
	// A window of fewer than 1000 wake-ups reads 0 (a nearly idle process).
	// Default 50ms; 0 turns the check off.
	MaxLag time.Duration `yaml:"max_lag"`
	// MaxViewersPerStream is the most WHEP viewers of one stream at once;
	// one more gets 503 with Retry-After. Default 200; 0 means no limit.
	MaxViewersPerStream int `yaml:"max_viewers_per_stream"`
	// MaxViewers is the most WHEP viewers at once, of all streams (each is
	// a PeerConnection the gateway encrypts the stream for). Default 500;
	// 0 means no limit. HLS and DASH players are not counted.
	MaxViewers int `yaml:"max_viewers"`
	// PublishIdleTimeout ends a WHIP publish that connected but sent no
	// RTP this long after the answer: the session is closed, the stream
	// ends (stream.ended) and the name is free at once. Default 10s.
	PublishIdleTimeout time.Duration `yaml:"publish_idle_timeout"`
	// ICETimeout ends a WHIP or WHEP session whose ICE and DTLS have not
	// connected this long after the answer (a publisher's name is free at
	// once). It also bounds the DTLS handshake. Default 10s.
	ICETimeout time.Duration `yaml:"ice_timeout"`
	// Rate limits requests per client IP on WHIP, WHEP and the API.
	Rate Rate `yaml:"rate"`
}

// Rate is a token bucket per client IP over the requests to /whip/,
// /whep/ and /v1/ (HLS, DASH, /metrics and health checks are not
// limited): Requests per second on average, Burst at once. A request over
// it gets 429 with Retry-After. The client IP is the connection's, or from
// X-Forwarded-For when the connection comes from one of
// http.trusted_proxies.
type Rate struct {
	// Requests is the sustained rate per client IP, per second. Default
	// 50; 0 turns rate limiting off.
	Requests float64 `yaml:"requests"`
	// Burst is how many requests a client IP may make at once. Default 200
	// (a page that publishes, trickles its candidates and polls the API).
	Burst int `yaml:"burst"`
	// MaxClients bounds the client IPs tracked at once; past it the idle
	// ones, then any, are forgotten (a forgotten IP starts with a full
	// bucket), so many source addresses cannot grow memory without bound.
	// Default 65536 (a few MiB).
	MaxClients int `yaml:"max_clients"`
	// ExemptLoopback leaves clients on 127.0.0.0/8 and ::1 unlimited.
	// Default false: behind a local reverse proxy every client would be
	// loopback.
	ExemptLoopback bool `yaml:"exempt_loopback"`
}

func (c *Config) validateLimits(bad func(key, format string, a ...any)) {
	l := c.Limits
	if l.MaxPublishers < 0 || l.MaxPublishers > 1000000 {
		bad("limits.max_publishers", "%d is out of range 0-1000000", l.MaxPublishers)
	}
	if l.MaxCPU < 0 || l.MaxCPU > 1 {
		bad("limits.max_cpu", "%g is out of range 0-1 (a fraction of the cores)", l.MaxCPU)
	}
	if l.MaxMachineCPU < 0 || l.MaxMachineCPU > 1 {
		bad("limits.max_machine_cpu", "%g is out of range 0-1 (a fraction of the machine's cores)", l.MaxMachineCPU)
	}
	if l.PublisherCost != 0 && (l.PublisherCost < 0.001 || l.PublisherCost > 16) {
		bad("limits.publisher_cost", "%g is out of range 0.001-16 (cores per publisher; 0 = by audio.codec)", l.PublisherCost)
	}
	if l.MaxLag < 0 || l.MaxLag > 10*time.Second {
		bad("limits.max_lag", "%s is out of range 0-10s", l.MaxLag)
	}
	if l.MaxViewersPerStream < 0 || l.MaxViewersPerStream > 1000000 {
		bad("limits.max_viewers_per_stream", "%d is out of range 0-1000000", l.MaxViewersPerStream)
	}
	if l.MaxViewers < 0 || l.MaxViewers > 1000000 {
		bad("limits.max_viewers", "%d is out of range 0-1000000", l.MaxViewers)
	}
	if l.PublishIdleTimeout < time.Second || l.PublishIdleTimeout > 10*time.Minute {
		bad("limits.publish_idle_timeout", "%s is out of range 1s-10m", l.PublishIdleTimeout)
	}
	if l.ICETimeout < time.Second || l.ICETimeout > 10*time.Minute {
		bad("limits.ice_timeout", "%s is out of range 1s-10m", l.ICETimeout)
	}
	r := l.Rate
	if r.Requests < 0 || r.Requests > 1e6 {
		bad("limits.rate.requests", "%g is out of range 0-1000000", r.Requests)
	}
	if r.Requests > 0 && (r.Burst < 1 || r.Burst > 1000000) {
		bad("limits.rate.burst", "%d is out of range 1-1000000", r.Burst)
	}
	if r.Requests > 0 && (r.MaxClients < 1 || r.MaxClients > 10000000) {
		bad("limits.rate.max_clients", "%d is out of range 1-10000000", r.MaxClients)
	}
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "%v", err)
		}
	}
}

// ParsePrefix reads an entry of http.trusted_proxies: an address
// ("10.0.0.1", "::1") or a CIDR prefix ("10.0.0.0/8", "fd00::/8").
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
