package rtmp

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	rtmpmessage "github.com/bluenviron/gortmplib/pkg/message"
	"go.uber.org/goleak"

	"github.com/whipcast/whipcast/media"
)

// scriptedServer accepts one connection, completes the RTMP handshake and
// then hands it to serve. It returns the URL to dial (with key) and a
// channel closed once serve has returned and the connection is closed.
func scriptedServer(t *testing.T, key string, serve func(c net.Conn, mrw *rtmpmessage.ReadWriter)) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// A bound for a test gone wrong, not part of what is tested.
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		bc := bytecounter.NewReadWriter(c)
		if _, _, err := handshake.DoServer(bc, false); err != nil {
			return
		}
		serve(c, rtmpmessage.NewReadWriter(bc, bc, false))
	}()
	return "rtmp://" + ln.Addr().String() + "/live/" + key, done
}

// answer reads commands and answers connect, createStream and publish the
// way nginx-rtmp does, except that publish's onStatus is status (level and
// code) and connect is refused when connectErr is set.
func answer(mrw *rtmpmessage.ReadWriter, connectErr bool, level, code, desc string) error {
	for {
		msg, err := mrw.Read()
		if err != nil {
			return err
		}
		cmd, ok := msg.(*rtmpmessage.CommandAMF0)
		if !ok {
			continue
		}
		switch cmd.Name {
		case "connect":
			name, lvl, c := "_result", "status", "NetConnection.Connect.Success"
			if connectErr {
				name, lvl, c = "_error", "error", "NetConnection.Connect.Rejected"
			}
			if err := mrw.Write(&rtmpmessage.CommandAMF0{ChunkStreamID: 3, Name: name, CommandID: cmd.CommandID, Arguments: []any{
				amf0.Object{{Key: "fmsVer", Value: "FMS/3,0,1,123"}},
				amf0.Object{{Key: "level", Value: lvl}, {Key: "code", Value: c}, {Key: "description", Value: desc}},
			}}); err != nil {
				return err
			}
		case "createStream":
			if err := mrw.Write(&rtmpmessage.CommandAMF0{ChunkStreamID: 3, Name: "_result", CommandID: cmd.CommandID, Arguments: []any{nil, float64(1)}}); err != nil {
				return err
			}
		case "publish":
			return mrw.Write(&rtmpmessage.CommandAMF0{ChunkStreamID: 5, MessageStreamID: 0x1000000, Name: "onStatus", CommandID: 0, Arguments: []any{
				nil,
				amf0.Object{{Key: "level", Value: level}, {Key: "code", Value: code}, {Key: "description", Value: desc}},
			}})
		}
	}
}

// TestDialSilentAfterHandshake: a server that completes the handshake and
// then never answers connect fails the dial with ErrTimeout within
// Settings.Timeout, and no goroutine of the attempt is left (go-rtmp kept
// three until the server hung up).
func TestDialSilentAfterHandshake(t *testing.T) {
	u, done := scriptedServer(t, "key", func(c net.Conn, _ *rtmpmessage.ReadWriter) {
		// Read and say nothing until the client hangs up.
		_, _ = io.Copy(io.Discard, c)
	})
	tg, _ := ParseURL(u)
	const timeout = 500 * time.Millisecond
	start := time.Now()
	_, err := dialRTMP(context.Background(), tg, &Settings{Timeout: timeout})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("dial: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > timeout+5*time.Second {
		t.Errorf("dial returned after %v, Timeout %v", d, timeout)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client never closed its side after the timeout")
	}
	goleak.VerifyNone(t)
}

// TestDialRefused: a server that refuses the stream key (publish answered
// with onStatus NetStream.Publish.BadName, as nginx-rtmp does for a name
// already publishing) or the app (connect answered with _error) fails the
// dial with ErrRefused, and the error names the server's code but never
// the key, even when the server's description quotes it.
func TestDialRefused(t *testing.T) {
	const key = "s3cr3t-key"
	for _, tc := range []struct {
		name       string
		connectErr bool
		want       string
	}{
		{"publish", false, "NetStream.Publish.BadName"},
		{"connect", true, "NetConnection.Connect.Rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, done := scriptedServer(t, key, func(c net.Conn, mrw *rtmpmessage.ReadWriter) {
				_ = answer(mrw, tc.connectErr, "error", "NetStream.Publish.BadName", "stream "+key+" is already publishing")
				_, _ = io.Copy(io.Discard, c)
			})
			tg, _ := ParseURL(u)
			_, err := dialRTMP(context.Background(), tg, &Settings{Timeout: 10 * time.Second})
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("dial: %v, want ErrRefused", err)
			}
			if !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %s refused with %s", err, tc.name, tc.want)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error %q holds the stream key", err)
			}
			<-done
		})
	}
}

// TestConnErrAfterServerHangsUp: once published, a server that closes the
// connection shows in err(), which is what the pusher checks between
// frames.
func TestConnErrAfterServerHangsUp(t *testing.T) {
	u, done := scriptedServer(t, "key", func(c net.Conn, mrw *rtmpmessage.ReadWriter) {
		_ = answer(mrw, false, "status", "NetStream.Publish.Start", "")
	})
	tg, _ := ParseURL(u)
	c, err := dialRTMP(context.Background(), tg, &Settings{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for c.err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.err() == nil {
		t.Fatal("err() is nil after the server closed the connection")
	}
}

// TestPusherPublishRefused: a pusher whose key the server refuses goes to
// retrying with the refusal as its last error, never to live (go-rtmp did
// not wait for publish's onStatus, so a refused key showed live at first).
func TestPusherPublishRefused(t *testing.T) {
	const key = "wrongkey"
	u, done := scriptedServer(t, key, func(c net.Conn, mrw *rtmpmessage.ReadWriter) {
		_ = answer(mrw, false, "error", "NetStream.Publish.BadName", "")
		_, _ = io.Copy(io.Discard, c)
	})
	v := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	src := media.NewStream("s", []*media.Track{v}, nil)
	defer src.Close()
	clock := &fakeClock{now: time.Unix(0, 0), timers: make(chan chan time.Time)}
	var mu sync.Mutex
	var states []State
	p, err := New(src, Settings{
		URL:     u,
		Clock:   clock,
		Rand:    func() float64 { return 0 },
		Timeout: 10 * time.Second,
		OnState: func(s Status) { mu.Lock(); states = append(states, s.State); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	select {
	case <-clock.timers: // the backoff after the first attempt
	case <-time.After(20 * time.Second):
		t.Fatal("no retry after a refused publish")
	}
	st := p.Status()
	p.Close()
	<-done
	if st.State != StateRetrying || st.Connects != 0 || !strings.Contains(st.LastError, "refused") || !strings.Contains(st.LastError, "BadName") {
		t.Fatalf("status %+v, want retrying, never connected, refused with BadName", st)
	}
	if strings.Contains(st.LastError, key) {
		t.Errorf("last error %q holds the key", st.LastError)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range states {
		if s == StateLive {
			t.Fatalf("states %v: live after a refused publish", states)
		}
	}
}
