package whipclient

import (
	"maps"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// drainBound bounds how long Wait waits for the gateway to report the last
// packet of each track received: a packet lost at the very end (the Loss
// option, or a real loss) is never repaired, since nothing after it shows
// the hole, and its RR never comes.
const drainBound = 5 * time.Second

// lastSent is an interceptor that records the newest sequence number
// written on each local stream (RTX, on its own SSRC, is not counted),
// nearest the wire (after the Loss option's drops), so that Wait can tell
// when the gateway's receiver reports show everything sent as received.
type lastSent struct {
	interceptor.NoOp
	mu   sync.Mutex
	last map[uint32]uint16
}

func (l *lastSent) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC == ssrc {
			l.mu.Lock()
			// A NACK resend (without RTX) carries its old number.
			if last, ok := l.last[ssrc]; !ok || int16(h.SequenceNumber-last) > 0 {
				l.last[ssrc] = h.SequenceNumber
			}
			l.mu.Unlock()
		}
		return w.Write(h, payload, a)
	})
}

// sent returns a copy of the last sequence number per SSRC.
func (l *lastSent) sent() map[uint32]uint16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.last)
}

type lastSentFactory struct{ l *lastSent }

func (f lastSentFactory) NewInterceptor(string) (interceptor.Interceptor, error) { return f.l, nil }

// drain waits, up to drainBound, until the gateway's receiver reports show
// the last packet sent on every track received. Without it a DELETE right
// after the last write ended the session with the last frames still in
// flight or unread on a busy machine (7 of 451 frames missing from a
// recording, with two test suites at once).
func (c *Client) drain() {
	want := c.lastSent.sent()
	deadline := time.NewTimer(drainBound)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		done := true
		for ssrc, seq := range want {
			h, ok := c.highest[ssrc]
			if !ok || int16(h-seq) < 0 {
				done = false
				break
			}
		}
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-c.rr:
		case <-deadline.C:
			return
		}
	}
}
