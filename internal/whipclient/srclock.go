package whipclient

import (
	"math"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// srClock is an interceptor that makes outgoing Sender Reports lie, as
// some publishers' do (issue 11: GStreamer 1.22's NTP time runs at half its
// RTP clock): from the first SR on, NTP time advances scale times as fast
// as real time and, jumpAfter after the first SR, jumps by jump. It sits
// below pion's report interceptor so it sees the SRs that one writes.
type srClock struct {
	interceptor.NoOp
	scale     float64
	jump      time.Duration
	jumpAfter time.Duration

	mu    sync.Mutex
	base  uint64 // NTP time of the first SR (shared by all tracks)
	first time.Time
}

type srClockFactory struct{ opts Options }

func (f srClockFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	scale := f.opts.SRClockScale
	if scale == 0 {
		scale = 1
	}
	return &srClock{scale: scale, jump: f.opts.SRJump, jumpAfter: f.opts.SRJumpAfter}, nil
}

func (o Options) lyingSRs() bool {
	return o.SRClockScale != 0 && o.SRClockScale != 1 || o.SRJump != 0
}

func (c *srClock) rewrite(ntp uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.base == 0 {
		c.base, c.first = ntp, now
	}
	d := float64(int64(ntp-c.base)) * c.scale
	if c.jump != 0 && now.Sub(c.first) >= c.jumpAfter {
		d += c.jump.Seconds() * (1 << 32)
	}
	return c.base + uint64(int64(math.Round(d)))
}

func (c *srClock) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attr interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				sr.NTPTime = c.rewrite(sr.NTPTime)
			}
		}
		return w.Write(pkts, attr)
	})
}
