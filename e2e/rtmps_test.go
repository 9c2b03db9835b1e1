package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/outputs/rtmp"
)

// tlsProxy terminates TLS with a certificate for 127.0.0.1 made by a test CA
// and forwards to nginx-rtmp, as an rtmps ingest does.
func tlsProxy(t *testing.T, backend string) (addr string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "whipcast test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
				<-done
				c.Close()
				b.Close()
				<-done
			}()
		}
	}()
	return ln.Addr().String(), roots
}

// TestE2ERestreamRTMPS pushes over TLS, trusting only the test CA through
// the gateway's RTMPTLS hook.
func TestE2ERestreamRTMPS(t *testing.T) {
	n := startNginx(t)
	addr, roots := tlsProxy(t, n.url(""))
	gateway.RTMPTLS = &tls.Config{RootCAs: roots}
	t.Cleanup(func() { gateway.RTMPTLS = nil })
	g := startGateway(t, fmt.Sprintf("streams:\n  - restream: [\"rtmps://%s/live/{stream}\"]\n", addr))
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/tls1", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	waitFor(t, 5*time.Second, "RTMPS output live", func() bool { return restreamState(g, "tls1", 0).State == rtmp.StateLive })
	// Live means the server accepted the publish; under load the first
	// keyframe (and the AAC stage's first frames) can take a moment more.
	waitFor(t, 10*time.Second, "RTMPS output sending media", func() bool { return restreamState(g, "tls1", 0).Messages > 30 })
	time.Sleep(3 * time.Second)
	_ = pub.Close()
	waitFor(t, 5*time.Second, "outputs stopped", func() bool { return len(g.Restream.Status("tls1")) == 0 })
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files over rtmps, want 1", len(recs))
	}
	checkFLVRecording(t, recs[0], 2, 6)
}
