package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/internal/certfile"
)

// ErrNoCertFiles is ReloadTLS's answer when http.tls serves no certificate
// files (plain HTTP, or ACME, which renews by itself).
var ErrNoCertFiles = errors.New("http.tls.cert is not set: nothing to reload")

// httpsSetup is what http.tls makes: the listener's TLS configuration and,
// for ACME's HTTP-01 challenge, a second plain-HTTP server.
type httpsSetup struct {
	tls     *tls.Config
	files   *certfile.Reloader // cert and key files; nil with ACME
	acmeSrv *http.Server       // nil unless ACME with http_addr
	acmeLn  net.Listener
}

// newTLS builds http.tls; nil when HTTPS is off.
func newTLS(c config.TLS) (*httpsSetup, error) {
	if !c.Enabled() {
		return nil, nil
	}
	s := &httpsSetup{}
	if len(c.ACME.Hosts) == 0 {
		r, err := certfile.NewReloader(c.Cert, c.Key, "http.tls.cert", "http.tls.key")
		if err != nil {
			return nil, err
		}
		s.files = r
		// TLS 1.2 at least (RFC 9325); h2 first: LL-HLS blocking reloads
		// and parts share one connection (ServeTLS adds h2 to NextProtos).
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
		return s, nil
	}
	m := acmeManager(c.ACME)
	s.tls = m.TLSConfig() // answers TLS-ALPN-01 (acme-tls/1) too
	s.tls.MinVersion = tls.VersionTLS12
	if c.ACME.HTTPAddr != "" {
		ln, err := net.Listen("tcp", c.ACME.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("http.tls.acme.http_addr: %w (the HTTP-01 challenge comes to port 80; see docs/networks.md)", err)
		}
		s.acmeLn = ln
		// HTTP-01 challenges; every other request is redirected to https.
		s.acmeSrv = &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 10 * time.Second}
	}
	return s, nil
}

// acmeManager is autocert for http.tls.acme: certificates for the listed
// hosts only (a handshake naming any other host asks the CA nothing), kept
// in cache_dir.
func acmeManager(c config.ACME) *autocert.Manager {
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(c.CacheDir),
		HostPolicy: autocert.HostWhitelist(c.Hosts...),
		Email:      c.Email,
	}
	if c.DirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: c.DirectoryURL}
	}
	return m
}

// serveACME runs the HTTP-01 listener until stop.
func (s *httpsSetup) serveACME(errc chan<- error) {
	if s == nil || s.acmeSrv == nil {
		return
	}
	go func() {
		if err := s.acmeSrv.Serve(s.acmeLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http.tls.acme.http_addr: %w", err)
		}
	}()
}

func (s *httpsSetup) shutdown(ctx context.Context) {
	if s != nil && s.acmeSrv != nil {
		_ = s.acmeSrv.Shutdown(ctx)
	}
}

func (s *httpsSetup) close() {
	if s != nil && s.acmeLn != nil {
		_ = s.acmeLn.Close()
	}
}

// ReloadTLS reads http.tls.cert and key again (SIGHUP): new TLS handshakes
// get the new certificate, open connections and every WebRTC session carry
// on. When the files do not load, the old certificate stays and the error
// says why.
func (g *Gateway) ReloadTLS() error {
	if g.https == nil || g.https.files == nil {
		return ErrNoCertFiles
	}
	leaf, err := g.https.files.Reload()
	if err != nil {
		g.log.Error("TLS certificate reload failed", "err", err)
		return err
	}
	g.log.Info("TLS certificate reloaded", "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if time.Now().After(leaf.NotAfter) {
		g.log.Warn("the reloaded TLS certificate has expired", "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// hsts adds Strict-Transport-Security (RFC 6797) to every answer.
func hsts(maxAge time.Duration, next http.Handler) http.Handler {
	v := "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", v)
		next.ServeHTTP(w, r)
	})
}
