package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/testca"
)

func TestTLSDefaultIsPlainHTTP(t *testing.T) {
	c, err := Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.TLS.Enabled() || c.HTTP.TLS.HSTS != 0 || c.HTTP.TLS.ACME.HTTPAddr != ":80" || c.HTTP.TLS.ACME.CacheDir != "./acme" ||
		c.WebRTC.ICETransport != ICETransportAll {
		t.Fatalf("defaults: %+v ice_transport %q", c.HTTP.TLS, c.WebRTC.ICETransport)
	}
}

func TestTLSFilesAndACME(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	a := ca.Issue(t, dir, "a", "127.0.0.1")
	doc := fmt.Sprintf("http:\n  addr: :8443\n  tls:\n    cert: %s\n    key: %s\n    hsts: 8760h\n", a.CertPath, a.KeyPath)
	c, err := Load([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HTTP.TLS.Enabled() || c.HTTP.TLS.HSTS != 8760*time.Hour {
		t.Fatalf("http.tls: %+v", c.HTTP.TLS)
	}
	c, err = Load(nil, []string{"WHIPCAST_HTTP_TLS_CERT=" + a.CertPath, "WHIPCAST_HTTP_TLS_KEY=" + a.KeyPath})
	if err != nil || c.HTTP.TLS.Cert != a.CertPath {
		t.Fatalf("from the environment: %v", err)
	}
	acme := "http:\n  addr: :443\n  tls:\n    acme:\n      hosts: [live.example.com, xn--bcher-kva.example]\n      email: ops@example.com\n      directory_url: https://acme-staging-v02.api.letsencrypt.org/directory\n"
	if c, err = Load([]byte(acme), nil); err != nil || !c.HTTP.TLS.Enabled() || len(c.HTTP.TLS.ACME.Hosts) != 2 {
		t.Fatalf("acme: %v %+v", err, c)
	}
}

func TestTLSErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	a := ca.Issue(t, dir, "a", "127.0.0.1")
	b := ca.Issue(t, dir, "b", "127.0.0.1")
	missing := filepath.Join(dir, "missing.crt")
	files := func(cert, key string) string {
		return fmt.Sprintf("http:\n  tls:\n    cert: %q\n    key: %q\n", cert, key)
	}
	acme := func(extra string) string { return "http:\n  tls:\n    acme:\n" + extra }
	for _, tc := range []struct{ name, doc, want string }{
		{"cert without key", files(a.CertPath, ""), "http.tls.key: is required with http.tls.cert"},
		{"key without cert", files("", a.KeyPath), "http.tls.cert: is required with http.tls.key"},
		{"missing cert file", files(missing, a.KeyPath), "http.tls.cert: open " + missing + ": no such file"},
		{"missing key file", files(a.CertPath, missing), "http.tls.key: open " + missing + ": no such file"},
		{"key of another certificate", files(a.CertPath, b.KeyPath), "private key does not match public key"},
		{"files and acme", fmt.Sprintf("http:\n  tls:\n    cert: %s\n    key: %s\n    acme:\n      hosts: [a.example.com]\n", a.CertPath, a.KeyPath),
			"http.tls: set either cert and key or acme.hosts, not both"},
		{"hsts on plain http", "http:\n  tls:\n    hsts: 1h\n", "http.tls.hsts: applies to HTTPS only"},
		{"negative hsts", files(a.CertPath, a.KeyPath) + "    hsts: -1s\n", "http.tls.hsts: -1s is out of range"},
		{"acme ip", acme("      hosts: [203.0.113.7]\n"), "http.tls.acme.hosts[0]: \"203.0.113.7\" is an IP address"},
		{"acme wildcard", acme("      hosts: [ok.example.com, \"*.example.com\"]\n"), "http.tls.acme.hosts[1]: \"*.example.com\": wildcard"},
		{"acme bare name", acme("      hosts: [localhost]\n"), "not a fully qualified DNS name"},
		{"acme bad label", acme("      hosts: [-a.example.com]\n"), "http.tls.acme.hosts[0]: \"-a.example.com\" is not a DNS name"},
		{"acme unicode", acme("      hosts: [bücher.example]\n"), "xn-- form"},
		{"acme no cache", acme("      hosts: [a.example.com]\n      cache_dir: \"\"\n"), "http.tls.acme.cache_dir: is required"},
		{"acme email", acme("      hosts: [a.example.com]\n      email: nobody\n"), "http.tls.acme.email: \"nobody\" is not an e-mail address"},
		{"acme http_addr", acme("      hosts: [a.example.com]\n      http_addr: \"80\"\n"), "http.tls.acme.http_addr: \"80\" is not host:port"},
		{"acme http_addr same as http.addr", "http:\n  addr: \":80\"\n  tls:\n    acme:\n      hosts: [a.example.com]\n", "must differ from http.addr"},
		{"acme directory", acme("      hosts: [a.example.com]\n      directory_url: http://ca.example/dir\n"), "http.tls.acme.directory_url: \"http://ca.example/dir\" is not an https:// URL"},
		{"unknown key", "http:\n  tls:\n    certificate: x\n", "field certificate not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.doc), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestICETransport(t *testing.T) {
	turn := "webrtc:\n  ice_servers:\n    - urls: [\"turn:127.0.0.1:3478\"]\n      secret: s\n  ice_transport: relay\n"
	if c, err := Load([]byte(turn), nil); err != nil || c.WebRTC.ICETransport != ICETransportRelay {
		t.Fatalf("relay with a TURN server: %v", err)
	}
	for _, tc := range []struct{ doc, want string }{
		{"webrtc:\n  ice_transport: relay\n", "webrtc.ice_transport: relay needs a turn: or turns: server"},
		{"webrtc:\n  ice_servers:\n    - urls: [\"stun:127.0.0.1\"]\n  ice_transport: relay\n", "webrtc.ice_transport: relay needs a turn:"},
		{"webrtc:\n  ice_transport: host\n", `webrtc.ice_transport: "host" is not one of all, relay`},
	} {
		if _, err := Load([]byte(tc.doc), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.doc, err, tc.want)
		}
	}
}
