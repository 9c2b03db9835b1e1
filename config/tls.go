package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/whipcast/whipcast/internal/certfile"
)

// TLS is http.tls: HTTPS on http.addr with a certificate from files (Cert
// and Key, reread on SIGHUP) or from an ACME CA (ACME). Neither set: plain
// HTTP.
type TLS struct {
	// Cert is a PEM certificate chain file (leaf first). Default "".
	Cert string `yaml:"cert"`
	// Key is the PEM private key of Cert. Default "".
	Key string `yaml:"key"`
	// HSTS, when above 0, sends Strict-Transport-Security with this
	// max-age on every HTTPS answer. Default 0 (off): a browser that saw
	// it refuses plain HTTP to the host for that long, a choice to make
	// on purpose.
	HSTS time.Duration `yaml:"hsts"`
	// ACME gets and renews certificates by itself. Default off.
	ACME ACME `yaml:"acme"`
}

// ACME is http.tls.acme: certificates for public names from an ACME CA
// (RFC 8555; golang.org/x/crypto/acme/autocert), renewed before they
// expire.
type ACME struct {
	// Hosts are the DNS names to get certificates for; a TLS handshake for
	// any other name is refused. Empty: ACME off. Default none.
	Hosts []string `yaml:"hosts"`
	// CacheDir keeps the account key and the certificates, so a restart
	// does not ask the CA again. Default ./acme.
	CacheDir string `yaml:"cache_dir"`
	// Email is the account's contact for the CA's notices. Default "".
	Email string `yaml:"email"`
	// HTTPAddr is where the HTTP-01 challenge is answered: the CA connects
	// to port 80 of each host, so this must be reachable as that
	// (":80", or a port the firewall forwards 80 to). Other requests there
	// are redirected to https. "" answers only TLS-ALPN-01, which needs
	// http.addr reachable as port 443. Default ":80".
	HTTPAddr string `yaml:"http_addr"`
	// DirectoryURL is the CA's ACME directory. Default "": Let's Encrypt
	// production.
	DirectoryURL string `yaml:"directory_url"`
}

// Enabled reports whether the HTTP listener serves HTTPS.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" || len(t.ACME.Hosts) > 0 }

func (c *Config) validateTLS(bad func(key, format string, a ...any)) {
	t := c.HTTP.TLS
	if t.HSTS < 0 || t.HSTS > 2*366*24*time.Hour {
		bad("http.tls.hsts", "%s is out of range 0-17568h (two years)", t.HSTS)
	}
	if t.HSTS > 0 && !t.Enabled() {
		bad("http.tls.hsts", "applies to HTTPS only: set http.tls.cert and key, or http.tls.acme.hosts")
	}
	files := t.Cert != "" || t.Key != ""
	acme := len(t.ACME.Hosts) > 0
	switch {
	case files && acme:
		bad("http.tls", "set either cert and key or acme.hosts, not both")
	case t.Cert == "" && t.Key != "":
		bad("http.tls.cert", "is required with http.tls.key")
	case t.Cert != "" && t.Key == "":
		bad("http.tls.key", "is required with http.tls.cert")
	case files:
		// Read now, so a wrong path or a key of another certificate is a
		// start error that names the key, not a handshake failure later.
		if _, err := certfile.Load(t.Cert, t.Key, "http.tls.cert", "http.tls.key"); err != nil {
			errsAdd(bad, err)
		}
	}
	if !acme {
		return
	}
	for i, h := range t.ACME.Hosts {
		if err := checkACMEHost(h); err != nil {
			bad(fmt.Sprintf("http.tls.acme.hosts[%d]", i), "%v", err)
		}
	}
	if t.ACME.CacheDir == "" {
		bad("http.tls.acme.cache_dir", "is required: without it every restart asks the CA for new certificates and meets its rate limits")
	}
	if t.ACME.Email != "" && (!strings.Contains(t.ACME.Email, "@") || strings.ContainsAny(t.ACME.Email, " \t\r\n<>")) {
		bad("http.tls.acme.email", "%q is not an e-mail address", t.ACME.Email)
	}
	if t.ACME.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(t.ACME.HTTPAddr); err != nil {
			bad("http.tls.acme.http_addr", "%q is not host:port", t.ACME.HTTPAddr)
		} else if t.ACME.HTTPAddr == c.HTTP.Addr {
			bad("http.tls.acme.http_addr", "must differ from http.addr %q", c.HTTP.Addr)
		}
	}
	if t.ACME.DirectoryURL != "" {
		if u, err := url.Parse(t.ACME.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("http.tls.acme.directory_url", "%q is not an https:// URL", t.ACME.DirectoryURL)
		}
	}
}

// errsAdd reports an error that already names its key.
func errsAdd(bad func(key, format string, a ...any), err error) {
	key, rest, ok := strings.Cut(err.Error(), ": ")
	if !ok || strings.ContainsAny(key, " ") {
		key, rest = "http.tls", err.Error()
	}
	bad(key, "%s", rest)
}

// checkACMEHost accepts a DNS name an ACME CA can validate over HTTP-01 or
// TLS-ALPN-01: no IP address, no wildcard (that needs DNS-01), at least
// two labels of letters, digits and hyphens.
func checkACMEHost(h string) error {
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return fmt.Errorf("%q is an IP address; ACME here needs a DNS name", h)
	}
	if strings.HasPrefix(h, "*.") {
		return fmt.Errorf("%q: wildcard names need the DNS-01 challenge, which whipcast does not answer", h)
	}
	if len(h) > 253 || !strings.Contains(strings.Trim(h, "."), ".") {
		return fmt.Errorf("%q is not a fully qualified DNS name", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a DNS name (label %q)", h, label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a DNS name (%q; write internationalised names in their xn-- form)", h, r)
			}
		}
	}
	return nil
}
