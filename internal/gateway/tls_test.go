package gateway

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/config"
)

// The ACME host policy lets the configured names through and refuses any
// other before asking a CA: a handshake naming a stranger costs nothing.
func TestACMEHostPolicy(t *testing.T) {
	m := acmeManager(config.ACME{Hosts: []string{"live.example.com", "Other.Example.org"}, CacheDir: t.TempDir()})
	ctx := context.Background()
	for _, h := range []string{"live.example.com", "other.example.org"} {
		if err := m.HostPolicy(ctx, h); err != nil {
			t.Errorf("%s refused: %v", h, err)
		}
	}
	for _, h := range []string{"evil.example.com", "example.com", "live.example.com.evil.net"} {
		if err := m.HostPolicy(ctx, h); err == nil {
			t.Errorf("%s accepted", h)
		}
	}
	_, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.example.com", CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	if err == nil || !strings.Contains(err.Error(), "not configured in HostWhitelist") {
		t.Fatalf("a handshake for an unlisted host: %v", err)
	}
}

// The HTTP-01 listener of http.tls.acme.http_addr redirects everything but
// the challenge path to https, and answers an unknown challenge token 404
// without asking the CA.
func TestACMEChallengeListener(t *testing.T) {
	s, err := newTLS(config.TLS{ACME: config.ACME{Hosts: []string{"live.example.com"}, CacheDir: t.TempDir(), HTTPAddr: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if !strings.Contains(strings.Join(s.tls.NextProtos, ","), "acme-tls/1") || s.tls.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config: NextProtos %v MinVersion %x", s.tls.NextProtos, s.tls.MinVersion)
	}
	errc := make(chan error, 1)
	s.serveACME(errc)
	defer s.shutdown(context.Background())
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + s.acmeLn.Addr().String()
	req, _ := http.NewRequest("GET", base+"/watch?stream=a", nil)
	req.Host = "live.example.com"
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://live.example.com/watch?stream=a" {
		t.Errorf("GET /watch: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	req, _ = http.NewRequest("GET", base+"/.well-known/acme-challenge/unknown-token", nil)
	req.Host = "live.example.com"
	if res, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown challenge: %d", res.StatusCode)
	}
}

func TestHSTS(t *testing.T) {
	rec := httptest.NewRecorder()
	hsts(8760*time.Hour, http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Header().Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Fatalf("Strict-Transport-Security %q", got)
	}
}
