// Package certfile serves a TLS certificate read from PEM files and swaps it
// for a new one on Reload, so an HTTPS listener picks up a renewed
// certificate without a restart: connections already open keep the one
// they were made with, new handshakes get the new one.
package certfile

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// Load reads a certificate chain and its private key from PEM files and
// checks that they belong together. Errors name the file that is wrong:
// certName and keyName are how the caller calls the two (config keys).
func Load(certPath, keyPath, certName, keyName string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certName, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyName, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s %s and %s %s: %w", certName, certPath, keyName, keyPath, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s %s: %w", certName, certPath, err)
		}
	}
	return &cert, nil
}

// Reloader holds the certificate of Load and hands it to every new TLS
// handshake (tls.Config.GetCertificate). Its methods are safe for
// concurrent use.
type Reloader struct {
	certPath, keyPath string
	certName, keyName string
	cur               atomic.Pointer[tls.Certificate]
}

// NewReloader loads the files once; an error there is the caller's start
// error.
func NewReloader(certPath, keyPath, certName, keyName string) (*Reloader, error) {
	r := &Reloader{certPath: certPath, keyPath: keyPath, certName: certName, keyName: keyName}
	c, err := Load(certPath, keyPath, certName, keyName)
	if err != nil {
		return nil, err
	}
	r.cur.Store(c)
	return r, nil
}

// Reload reads the files again and, when they load, serves the new
// certificate from the next handshake on. When they do not (a half-written
// renewal, a key that does not match), the certificate served so far stays
// and the error says why.
func (r *Reloader) Reload() (*x509.Certificate, error) {
	c, err := Load(r.certPath, r.keyPath, r.certName, r.keyName)
	if err != nil {
		return nil, errors.Join(ErrKept, err)
	}
	r.cur.Store(c)
	return c.Leaf, nil
}

// ErrKept is part of every Reload error: the certificate served before the
// failed reload is still served.
var ErrKept = errors.New("certificate not reloaded, the previous one is still served")

// Leaf is the certificate served now.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().Leaf }

// GetCertificate implements tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}
