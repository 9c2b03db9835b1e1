package rtmp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	gortmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"
)

// quietLogger keeps the test server's (go-rtmp's) logrus output out of
// the test log.
func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// tsServer is a go-rtmp server that records the timestamp of every audio
// and video message it receives, as the server reconstructs it.
type tsServer struct {
	gortmp.DefaultHandler
	mu     sync.Mutex
	got    []string
	bodies [][]byte
}

func (h *tsServer) OnConnect(uint32, *rtmpmsg.NetConnectionConnect) error { return nil }
func (h *tsServer) OnCreateStream(uint32, *rtmpmsg.NetConnectionCreateStream) error {
	return nil
}
func (h *tsServer) OnPublish(*gortmp.StreamContext, uint32, *rtmpmsg.NetStreamPublish) error {
	return nil
}

func (h *tsServer) record(kind string, ts uint32, payload io.Reader) error {
	b, _ := io.ReadAll(payload)
	if len(b) > 1 && b[1] == 0 {
		kind += "seq"
	}
	h.mu.Lock()
	h.got = append(h.got, fmt.Sprintf("%s:%d", kind, ts))
	h.bodies = append(h.bodies, b)
	h.mu.Unlock()
	return nil
}

func (h *tsServer) OnAudio(ts uint32, p io.Reader) error { return h.record("a", ts, p) }
func (h *tsServer) OnVideo(ts uint32, p io.Reader) error { return h.record("v", ts, p) }

// TestConnTimestampsRoundTrip sends, through our client to a go-rtmp server,
// a sequence header at its keyframe's ms in the middle of a stream (a
// configuration change, or a resync): the server must read back every
// timestamp as sent. The chunk writer (gortmplib's rawmessage.Writer) writes
// headers with timestamp deltas (fmt 1–3); a message that repeats its chunk
// stream's last timestamp must go out with delta 0, not the previous one.
func TestConnTimestampsRoundTrip(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &tsServer{}
	srv := gortmp.NewServer(&gortmp.ServerConfig{
		OnConnect: func(c net.Conn) (io.ReadWriteCloser, *gortmp.ConnConfig) {
			return c, &gortmp.ConnConfig{Handler: h, Logger: quietLogger()}
		},
	})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	tg, _ := ParseURL("rtmp://" + ln.Addr().String() + "/live/key")
	c, err := dialRTMP(context.Background(), tg, &Settings{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	seq := []byte{0x17, 0}
	frame := []byte{0x27, 1, 0, 0, 0, 9}
	key := []byte{0x17, 1, 0, 0, 0, 9}
	aseq := []byte{0xaf, 0, 0x11, 0x90}
	aframe := []byte{0xaf, 1, 7}
	msgs := []message{
		{kind: msgVideo, ts: 0, body: seq, header: true},
		{kind: msgVideo, ts: 0, body: key},
		{kind: msgAudio, ts: 0, body: aseq, header: true},
		{kind: msgAudio, ts: 0, body: aframe},
		{kind: msgVideo, ts: 33, body: frame},
		{kind: msgVideo, ts: 67, body: frame},
		{kind: msgVideo, ts: 100, body: seq, header: true},
		{kind: msgVideo, ts: 100, body: key},
		{kind: msgAudio, ts: 101, body: aframe},
		{kind: msgVideo, ts: 133, body: frame},
		{kind: msgVideo, ts: 167, body: frame},
		// Larger than the chunk size the client announced: split in chunks.
		{kind: msgVideo, ts: 200, body: append([]byte{0x27, 1, 0, 0, 0}, bytes.Repeat([]byte{1, 2, 3}, 70000)...)},
	}
	want := ""
	for i, m := range msgs {
		if err := c.write(m); err != nil {
			t.Fatal(err)
		}
		kind := "v"
		if m.kind == msgAudio {
			kind = "a"
		}
		if m.header {
			kind += "seq"
		}
		if i > 0 {
			want += " "
		}
		want += fmt.Sprintf("%s:%d", kind, m.ts)
	}
	deadline := time.Now().Add(5 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		h.mu.Lock()
		n := len(h.got)
		got = join(h.got)
		h.mu.Unlock()
		if n >= len(msgs) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = c.Close()
	if got != want {
		t.Errorf("server read %s\nsent        %s", got, want)
	}
	// The tag bodies reach the server byte for byte as the muxer made them.
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.bodies {
		if i < len(msgs) && !bytes.Equal(b, msgs[i].body) {
			t.Errorf("message %d: server read % x, sent % x", i, b, msgs[i].body)
		}
	}
}
