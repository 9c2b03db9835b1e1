package web

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// RateSettings configure a RateLimiter (limits.rate, http.trusted_proxies).
type RateSettings struct {
	// Requests is the sustained rate per client IP, per second; 0 or less
	// turns the limiter off (every request passes).
	Requests float64
	// Burst is how many requests a client IP may make at once. Default 1.
	Burst int
	// MaxClients bounds the client IPs tracked. Default 65536.
	MaxClients int
	// ExemptLoopback leaves loopback clients unlimited.
	ExemptLoopback bool
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

// Routes a RateLimiter counts refusals by: the label of
// whipcast_http_rate_limited_total.
const (
	RouteWHIP = "whip"
	RouteWHEP = "whep"
	RouteAPI  = "api"
)

var rateRoutes = []string{RouteWHIP, RouteWHEP, RouteAPI}

// RateLimiter is a token bucket per client IP (golang.org/x/time/rate, the
// one the Go team keeps, rather than our own arithmetic) in front of the
// routes whose requests cost the gateway something: WHIP and WHEP POSTs
// each make a PeerConnection, the API may start recordings and stages. A
// request past its bucket gets 429 with Retry-After before any of that.
//
// The buckets live in one map bounded by MaxClients: when it is full, the
// buckets that have refilled (idle clients, indistinguishable from new
// ones) are dropped, then arbitrary ones down to seven eighths, so a flood
// from many addresses costs a bounded amount of memory and an O(1)
// amortised sweep. A dropped client starts again with a full bucket: at
// worst an attacker with more addresses than MaxClients gets Burst
// requests per address, what it would get anyway by using a fresh one.
type RateLimiter struct {
	set     RateSettings
	limit   rate.Limit
	mu      sync.Mutex
	buckets map[netip.Addr]*rate.Limiter
	refused [3]atomic.Uint64 // by route, in rateRoutes order
	evicted atomic.Uint64
}

// NewRateLimiter makes a limiter; nil when s.Requests is 0 (off).
func NewRateLimiter(s RateSettings) *RateLimiter {
	if s.Requests <= 0 {
		return nil
	}
	if s.Burst < 1 {
		s.Burst = 1
	}
	if s.MaxClients < 1 {
		s.MaxClients = 65536
	}
	return &RateLimiter{set: s, limit: rate.Limit(s.Requests), buckets: make(map[netip.Addr]*rate.Limiter)}
}

// Wrap limits next, counting refusals under route. A nil limiter returns
// next as it is.
func (l *RateLimiter) Wrap(route string, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	idx := 0
	for i, r := range rateRoutes {
		if r == route {
			idx = i
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := l.allow(l.ClientIP(r), time.Now()); !ok {
			l.refused[idx].Add(1)
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			// A browser client on another origin must be able to read it.
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte("too many requests: limits.rate\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allow takes a token of ip's bucket at now, or says how long until one
// is there.
func (l *RateLimiter) allow(ip netip.Addr, now time.Time) (time.Duration, bool) {
	if !ip.IsValid() || (l.set.ExemptLoopback && ip.IsLoopback()) {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= l.set.MaxClients {
			l.evict(now)
		}
		b = rate.NewLimiter(l.limit, l.set.Burst)
		l.buckets[ip] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request takes no token
		return d, false
	}
	return 0, true
}

// evict makes room in the full map; l.mu is held.
func (l *RateLimiter) evict(now time.Time) {
	full := float64(l.set.Burst)
	for ip, b := range l.buckets {
		if b.TokensAt(now) >= full {
			delete(l.buckets, ip)
			l.evicted.Add(1)
		}
	}
	// Map iteration order is random: what goes is arbitrary.
	for ip := range l.buckets {
		if len(l.buckets) <= l.set.MaxClients*7/8 {
			break
		}
		delete(l.buckets, ip)
		l.evicted.Add(1)
	}
}

// Clients returns how many client IPs have a bucket now.
func (l *RateLimiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Refused returns the requests refused with 429 since start, by route
// (every route present).
func (l *RateLimiter) Refused() map[string]uint64 {
	out := make(map[string]uint64, len(rateRoutes))
	for i, r := range rateRoutes {
		out[r] = l.refused[i].Load()
	}
	return out
}

// ClientIP is the address a request is limited by: the connection's peer,
// or, when that peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (the left-most ones
// are whatever the client wrote). An unparsable header counts as the
// proxy's own request.
func (l *RateLimiter) ClientIP(r *http.Request) netip.Addr {
	peer := remoteAddr(r.RemoteAddr)
	if !l.trusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !l.trusted(client) {
				return client
			}
		}
	}
	return client
}

func (l *RateLimiter) trusted(a netip.Addr) bool {
	for _, p := range l.set.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr parses http.Request.RemoteAddr ("ip:port"); the zero Addr
// when it is not one (such requests are not limited: only tests make them).
func remoteAddr(s string) netip.Addr {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
