package whipclient

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// lossyLink is an interceptor that drops and delays outgoing RTP, for loss
// tests on loopback (no netem on the test machines). Registered first, it
// is the writer closest to the network, below pion's NACK responder.
type lossyLink struct {
	interceptor.NoOp
	loss    float64
	jitter  time.Duration
	mu      sync.Mutex // guards rng; the sender and the RTCP reader write
	rng     *rand.Rand
	statsMu *sync.Mutex
	dropped *int
}

type lossyFactory struct{ l *lossyLink }

func newLossyLink(loss float64, jitter time.Duration, seed int64, statsMu *sync.Mutex, dropped *int) lossyFactory {
	return lossyFactory{&lossyLink{
		loss: loss, jitter: jitter, statsMu: statsMu, dropped: dropped,
		rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
	}}
}

// NewInterceptor returns the one link: every PeerConnection built from the
// registry shares the seeded randomness (a client builds one).
func (f lossyFactory) NewInterceptor(string) (interceptor.Interceptor, error) { return f.l, nil }

func (l *lossyLink) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		l.mu.Lock()
		drop := l.rng.Float64() < l.loss
		var delay time.Duration
		if l.jitter > 0 {
			delay = time.Duration(l.rng.Int64N(int64(l.jitter)))
		}
		l.mu.Unlock()
		if drop {
			l.statsMu.Lock()
			*l.dropped++
			l.statsMu.Unlock()
			return len(payload), nil
		}
		if delay <= 0 {
			return w.Write(h, payload, a)
		}
		// The caller reuses its buffers once Write returns.
		hc := h.Clone()
		pc := append([]byte(nil), payload...)
		time.AfterFunc(delay, func() { _, _ = w.Write(&hc, pc, nil) })
		return len(payload), nil
	})
}
