package rtmp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/yutopp/go-amf0"
	gortmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"
)

// Chunk stream IDs (RTMP 5.3.1.1); 2 is protocol control and 3 carries
// go-rtmp's commands.
const (
	csData  = 5
	csAudio = 4
	csVideo = 6
)

// rtmpConn is a go-rtmp publishing session.
type rtmpConn struct {
	cc *gortmp.ClientConn
	st *gortmp.Stream
}

// quietLogger keeps go-rtmp's logrus output (which may echo command
// objects, and so the stream key) out of our logs.
func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// dialRTMP dials, handshakes, connects, creates a stream and publishes the
// key. go-rtmp has no deadlines of its own, so the whole setup runs in a
// goroutine bounded by s.Timeout and ctx. On expiry the socket is shut down
// through the RawConn captured at dial time, which ends a handshake stuck
// on a silent server (go-rtmp gives no other handle on the connection); a
// server that completes the handshake and then never answers connect still
// holds that goroutine until it closes the connection.
func dialRTMP(ctx context.Context, t Target, s *Settings) (conn, error) {
	type result struct {
		c   *rtmpConn
		err error
	}
	res := make(chan result, 1)
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	raw := make(chan syscall.RawConn, 1)
	go func() {
		c, err := setup(t, s, raw)
		res <- result{c, err}
	}()
	select {
	case r := <-res:
		return r.c, r.err
	case <-ctx.Done():
		select {
		case rc := <-raw:
			// Control fails without calling f once the socket is closed,
			// so a reused descriptor is never touched.
			_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
		default:
		}
		go func() {
			if r := <-res; r.c != nil {
				_ = r.c.Close()
			}
		}()
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("%w (%s)", ErrTimeout, s.Timeout)
		}
		return nil, ctx.Err()
	}
}

func setup(t Target, s *Settings, raw chan<- syscall.RawConn) (*rtmpConn, error) {
	cfg := &gortmp.ConnConfig{Logger: quietLogger()}
	d := &net.Dialer{Timeout: s.Timeout, Control: func(_, _ string, c syscall.RawConn) error {
		select {
		case raw <- c:
		default:
		}
		return nil
	}}
	var cc *gortmp.ClientConn
	var err error
	if t.Scheme == "rtmps" {
		tc := &tls.Config{}
		if s.TLS != nil {
			tc = s.TLS.Clone()
		}
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(t.Host)
		}
		cc, err = gortmp.DialWithTLSDialer(&tls.Dialer{NetDialer: d, Config: tc}, "rtmps", t.Host, cfg)
	} else {
		cc, err = gortmp.DialWithDialer(d, "rtmp", t.Host, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("rtmp: dial %s: %w", t.Host, err)
	}
	if err := cc.Connect(&rtmpmsg.NetConnectionConnect{Command: rtmpmsg.NetConnectionConnectCommand{
		App:      t.App,
		Type:     "nonprivate",
		FlashVer: "FMLE/3.0 (compatible; whipcast)",
		TCURL:    t.TCURL(),
	}}); err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("rtmp: connect to app %q refused: %w", t.App, err)
	}
	st, err := cc.CreateStream(nil, 0)
	if err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("rtmp: createStream: %w", err)
	}
	if err := st.Publish(&rtmpmsg.NetStreamPublish{PublishingName: t.Key, PublishingType: "live"}); err != nil {
		_ = cc.Close()
		// go-rtmp's error text never holds the key; ours must not either.
		return nil, fmt.Errorf("rtmp: publish: %w", err)
	}
	return &rtmpConn{cc: cc, st: st}, nil
}

func (c *rtmpConn) writeMetadata(meta map[string]any) error {
	return c.st.WriteDataMessage(csData, 0, "@setDataFrame", &rtmpmsg.NetStreamSetDataFrame{AmfData: amf0.ECMAArray(meta)})
}

func (c *rtmpConn) write(m message) error {
	if m.kind == msgAudio {
		return c.st.Write(csAudio, m.ts, &rtmpmsg.AudioMessage{Payload: bytes.NewReader(m.body)})
	}
	return c.st.Write(csVideo, m.ts, &rtmpmsg.VideoMessage{Payload: bytes.NewReader(m.body)})
}

func (c *rtmpConn) err() error { return c.cc.LastError() }

func (c *rtmpConn) Close() error { return c.cc.Close() }
