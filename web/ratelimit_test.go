package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

func reqFrom(remote string, xff ...string) *http.Request {
	r := httptest.NewRequest("POST", "/whip/x", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

// TestRateLimitBurstThen429: a client IP gets Burst requests at once, then
// 429 with Retry-After and the reason; another IP is not affected; the
// refusals are counted by route.
func TestRateLimitBurstThen429(t *testing.T) {
	l := NewRateLimiter(RateSettings{Requests: 0.5, Burst: 3})
	h := l.Wrap(RouteWHIP, okHandler())
	for i := range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, reqFrom("192.0.2.1:1000"))
		if w.Code != http.StatusNoContent {
			t.Fatalf("request %d within the burst: %d", i, w.Code)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, reqFrom("192.0.2.1:1001"))
	// 0.5/s: the next token is 2 s away.
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" || w.Body.String() != "too many requests: limits.rate\n" {
		t.Fatalf("past the burst: %d Retry-After %q %q", w.Code, w.Header().Get("Retry-After"), w.Body.String())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, reqFrom("192.0.2.2:1000"))
	if w.Code != http.StatusNoContent {
		t.Fatalf("another client: %d", w.Code)
	}
	if got := l.Refused(); got[RouteWHIP] != 1 || got[RouteWHEP] != 0 || got[RouteAPI] != 0 {
		t.Fatalf("refused %v", got)
	}
}

// TestRateLimitRefill: a refused request takes no token, and tokens come
// back at Requests per second (driven through allow with explicit times:
// no sleeping).
func TestRateLimitRefill(t *testing.T) {
	l := NewRateLimiter(RateSettings{Requests: 10, Burst: 2})
	ip := netip.MustParseAddr("198.51.100.1")
	t0 := time.Now()
	for i := range 2 {
		if _, ok := l.allow(ip, t0); !ok {
			t.Fatalf("request %d", i)
		}
	}
	for range 5 {
		if wait, ok := l.allow(ip, t0); ok || wait <= 0 || wait > 100*time.Millisecond {
			t.Fatalf("over the burst: ok %v wait %v", ok, wait)
		}
	}
	// Refusals took nothing: one token is back after 100 ms.
	if _, ok := l.allow(ip, t0.Add(100*time.Millisecond)); !ok {
		t.Fatal("no token after 1/rate")
	}
	if _, ok := l.allow(ip, t0.Add(100*time.Millisecond)); ok {
		t.Fatal("two tokens after 1/rate")
	}
}

// TestRateLimitBoundedClients: a flood from more addresses than MaxClients
// never holds more buckets than that; idle (refilled) buckets go first, so
// a busy client's bucket survives a sweep that idle ones can satisfy.
func TestRateLimitBoundedClients(t *testing.T) {
	l := NewRateLimiter(RateSettings{Requests: 1, Burst: 2, MaxClients: 100})
	t0 := time.Now()
	busy := netip.MustParseAddr("203.0.113.1")
	l.allow(busy, t0)
	l.allow(busy, t0) // empty now
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(a, t0.Add(time.Duration(i)*time.Millisecond))
		if n := l.Clients(); n > 100 {
			t.Fatalf("%d buckets after %d addresses", n, i+1)
		}
	}
	// Idle buckets go first: nine clients seen 10 s ago have refilled and
	// are dropped for a newcomer; the busy client's empty bucket stays,
	// and it is still refused.
	l2 := NewRateLimiter(RateSettings{Requests: 1, Burst: 2, MaxClients: 10})
	for i := range 9 {
		l2.allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), t0)
	}
	t1 := t0.Add(10 * time.Second)
	l2.allow(busy, t1)
	l2.allow(busy, t1)
	l2.allow(netip.MustParseAddr("10.0.1.1"), t1)
	if n := l2.Clients(); n != 2 {
		t.Fatalf("after the sweep %d buckets, want the busy one and the newcomer", n)
	}
	if _, ok := l2.allow(busy, t1); ok {
		t.Fatal("the busy client got a fresh bucket")
	}
	// None idle: arbitrary ones go, down to 7/8 of the bound.
	l3 := NewRateLimiter(RateSettings{Requests: 1, Burst: 2, MaxClients: 16})
	for i := range 17 {
		l3.allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), t0)
	}
	if n := l3.Clients(); n != 15 {
		t.Fatalf("after eviction %d buckets, want 14 kept + the newcomer", n)
	}
}

// TestRateLimitClientIP: X-Forwarded-For counts only from a trusted proxy,
// and then its right-most untrusted address is the client; loopback is
// limited unless exempt.
func TestRateLimitClientIP(t *testing.T) {
	l := NewRateLimiter(RateSettings{Requests: 1, Burst: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5", []string{"203.0.113.9"}, "192.0.2.1"},            // untrusted peer: header ignored
		{"10.1.2.3:5", nil, "10.1.2.3"},                                  // proxy without header: itself
		{"10.1.2.3:5", []string{"203.0.113.9"}, "203.0.113.9"},           // one proxy
		{"10.1.2.3:5", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},  // spoofed left part ignored
		{"10.1.2.3:5", []string{"203.0.113.9, 10.9.9.9"}, "203.0.113.9"}, // two proxies
		{"10.1.2.3:5", []string{"203.0.113.9", "10.9.9.9"}, "203.0.113.9"},
		{"10.1.2.3:5", []string{"garbage"}, "10.1.2.3"},
		{"[::ffff:10.1.2.3]:5", []string{"2001:db8::1"}, "2001:db8::1"},
	} {
		if got := l.ClientIP(reqFrom(tc.remote, tc.xff...)); got.String() != tc.want {
			t.Errorf("%s %q: client %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}

	for _, exempt := range []bool{false, true} {
		l := NewRateLimiter(RateSettings{Requests: 1, Burst: 1, ExemptLoopback: exempt})
		h := l.Wrap(RouteAPI, okHandler())
		codes := ""
		for range 3 {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, reqFrom("127.0.0.1:9"))
			codes += fmt.Sprint(w.Code, " ")
		}
		want := "204 429 429 "
		if exempt {
			want = "204 204 204 "
		}
		if codes != want {
			t.Errorf("loopback, exempt %v: %s, want %s", exempt, codes, want)
		}
	}
	if NewRateLimiter(RateSettings{}) != nil {
		t.Fatal("requests 0 must turn the limiter off")
	}
	var off *RateLimiter
	if h := off.Wrap(RouteWHIP, okHandler()); h == nil {
		t.Fatal("nil limiter")
	}
}
