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
	"sync/atomic"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/outputs/rtmp"
)

// rtmpsProxy terminates TLS with a certificate for 127.0.0.1 made by a test
// CA and forwards to nginx-rtmp, as an rtmps ingest does (Debian's nginx has
// no stream module to do it itself). A test can slow down the way to nginx.
type rtmpsProxy struct {
	addr  string
	roots *x509.CertPool
	// piece is the largest single write to nginx (0: as read from TLS).
	piece int
	// latency is added to every byte read from the gateway from then on.
	latency atomic.Int64
}

// setLatency delays what the gateway sends from now on by d on its way to
// nginx, as a congested link would; order is kept.
func (p *rtmpsProxy) setLatency(d time.Duration) { p.latency.Store(int64(d)) }

func tlsProxy(t *testing.T, backend string, piece int) *rtmpsProxy {
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
	p := &rtmpsProxy{roots: x509.NewCertPool(), piece: piece}
	p.roots.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
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
				p.serve(c, backend)
			}()
		}
	}()
	return p
}

// serve relays one connection. When the gateway closes, nginx gets
// everything before the end of stream (a half close), and the connection
// ends when nginx closes its side.
func (p *rtmpsProxy) serve(c net.Conn, backend string) {
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	up, down := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(up)
		if p.forward(b, c) == nil {
			_ = b.(*net.TCPConn).CloseWrite()
		}
	}()
	go func() {
		defer close(down)
		_, _ = io.Copy(c, b)
	}()
	select {
	case <-down:
	case <-up:
		select {
		case <-down:
		case <-time.After(10 * time.Second):
		}
	}
	c.Close()
	b.Close()
	<-up
	<-down
}

// forward copies src to dst through a delay line: each read is stamped with
// the latency of the moment and written, in pieces of at most p.piece
// bytes, once that latency has passed. It returns nil at the end of src.
func (p *rtmpsProxy) forward(dst, src net.Conn) error {
	type chunk struct {
		b   []byte
		due time.Time
	}
	q := make(chan chunk, 1<<14)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			due := time.Now().Add(time.Duration(p.latency.Load()))
			for b := buf[:n]; len(b) > 0; {
				k := len(b)
				if p.piece > 0 && k > p.piece {
					k = p.piece
				}
				q <- chunk{b[:k], due}
				b = b[k:]
			}
			if err != nil {
				return
			}
		}
	}()
	var werr error
	for ch := range q {
		if werr != nil {
			continue // drain, so the reader ends when src does
		}
		time.Sleep(time.Until(ch.due))
		if _, werr = dst.Write(ch.b); werr != nil {
			_ = src.Close()
		}
	}
	return werr
}

// TestE2ERestreamRTMPS pushes over TLS, trusting only the test CA through
// the gateway's RTMPTLS hook.
func TestE2ERestreamRTMPS(t *testing.T) {
	n := startNginx(t)
	p := tlsProxy(t, n.url(""), 0)
	gateway.RTMPTLS = &tls.Config{RootCAs: p.roots}
	t.Cleanup(func() { gateway.RTMPTLS = nil })
	g := startGateway(t, fmt.Sprintf("streams:\n  - restream: [\"rtmps://%s/live/{stream}\"]\n", p.addr))
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

// TestE2ERestreamRTMPSSlowLink slows the way to nginx down once the output is
// live: from then on every byte reaches nginx 2 s after the gateway sent it,
// in writes of 100 bytes that split RTMP chunks. When the gateway reports
// its output stopped, the last 2 s of the stream are still on their way; the
// recording must nonetheless hold all of it and end on a whole tag.
func TestE2ERestreamRTMPSSlowLink(t *testing.T) {
	n := startNginx(t)
	p := tlsProxy(t, n.url(""), 100)
	gateway.RTMPTLS = &tls.Config{RootCAs: p.roots}
	t.Cleanup(func() { gateway.RTMPTLS = nil })
	g := startGateway(t, fmt.Sprintf("streams:\n  - restream: [\"rtmps://%s/live/{stream}\"]\n", p.addr))
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/slow1", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	waitFor(t, 5*time.Second, "RTMPS output live", func() bool { return restreamState(g, "slow1", 0).State == rtmp.StateLive })
	p.setLatency(2 * time.Second)
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	waitFor(t, 5*time.Second, "outputs stopped", func() bool { return len(g.Restream.Status("slow1")) == 0 })
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files over rtmps, want 1", len(recs))
	}
	checkFLVRecording(t, recs[0], fixtureSeconds-1, fixtureSeconds+1)
}
