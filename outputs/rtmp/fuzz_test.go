package rtmp

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/handshake"
)

// handshakeLen is what a server sends of the RTMP handshake (RTMP 5.2):
// S0 (1 byte), S1 and S2 (1536 bytes each).
const handshakeLen = 1 + 1536 + 1536

// teeConn records what a server writes.
type teeConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *teeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// serverReplies is what a go-rtmp server answers our publish with after
// the handshake (the window and chunk size, connect's _result,
// createStream's _result, publish's onStatus): the seed the fuzzer
// mutates.
func serverReplies(tb testing.TB) []byte {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var tee *teeConn
	srv := gortmp.NewServer(&gortmp.ServerConfig{
		OnConnect: func(c net.Conn) (io.ReadWriteCloser, *gortmp.ConnConfig) {
			tee = &teeConn{Conn: c}
			return tee, &gortmp.ConnConfig{Handler: &tsServer{}, Logger: quietLogger()}
		},
	})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	tg, _ := ParseURL("rtmp://" + ln.Addr().String() + "/live/key")
	c, err := dialRTMP(context.Background(), tg, &Settings{Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	_ = c.Close()
	tee.mu.Lock()
	defer tee.mu.Unlock()
	if tee.out.Len() <= handshakeLen {
		tb.Fatalf("the server wrote %d bytes", tee.out.Len())
	}
	return append([]byte(nil), tee.out.Bytes()[handshakeLen:]...)
}

// FuzzRTMPServerReplies: whatever a server sends after the RTMP handshake
// (chunk headers, protocol control, AMF0 command results and statuses, in
// place of connect's, createStream's and publish's answers), our setup
// (dialRTMP on gortmplib) ends with a connection or an error within
// Settings.Timeout, never a panic, a hang or a goroutine left behind
// (TestMain's goleak); a connection we get takes a message and closes.
//
// What this found with go-rtmp v0.0.7, the client before gortmplib: it
// waited for a command's _result with no timeout and was not woken when
// its read loop ended, so the setup goroutine (with its writer loop)
// stayed blocked after dialRTMP had given up, a few goroutines per failed
// attempt. The timeout here is short so the fuzzer still runs several
// inputs a second.
func FuzzRTMPServerReplies(f *testing.F) {
	seed := serverReplies(f)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = ln.Close() })
	tg, _ := ParseURL("rtmp://" + ln.Addr().String() + "/live/key")
	f.Fuzz(func(t *testing.T, replies []byte) {
		served := make(chan struct{})
		go func() {
			defer close(served)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if handshake.HandshakeWithClient(c, c, &handshake.Config{SkipHandshakeVerification: true}) != nil {
				return
			}
			_, _ = c.Write(replies)
			// Then the server says no more: a client waiting for an
			// answer sees the end of the stream.
			_ = c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		}()
		c, err := dialRTMP(context.Background(), tg, &Settings{Timeout: 250 * time.Millisecond})
		if err == nil {
			_ = c.write(message{kind: msgVideo, ts: 0, body: []byte{0x17, 0}})
			_ = c.err()
			_ = c.Close()
		}
		<-served
	})
}
