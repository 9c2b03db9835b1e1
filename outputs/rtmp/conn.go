package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// Chunk stream IDs (RTMP 5.3.1.1); 2 is protocol control, 3 and 4 carry
// gortmplib's commands during setup.
const (
	csData  = 5
	csAudio = 4
	csVideo = 6
)

// RTMP message type IDs (RTMP 7.1) of what we send after publish.
const (
	typeAudio    = 8
	typeVideo    = 9
	typeDataAMF0 = 18
)

// streamID is the message stream gortmplib publishes on (1: it asks for one
// stream with createStream and uses the first, as every server answers).
// Its chunk headers write the field big-endian, so stream 1, which RTMP
// sends little-endian, is 1<<24 there.
const streamID = 0x1000000

// chunkSize is what gortmplib's client announces with Set Chunk Size before
// connect; our writer must split messages the same way.
const chunkSize = 65536

// rtmpConn is a gortmplib publishing session. gortmplib sets it up (dial,
// TLS, handshake, connect, createStream, publish and its onStatus, all
// bounded by a context); we then send the muxer's FLV tag bodies as they
// are, through a raw-message writer of our own, so the bytes on the wire
// are ours and not gortmplib's re-encoding of parsed configs.
type rtmpConn struct {
	cl *gortmplib.Client

	// wmu serialises writes; the media writer's chunk-header state is
	// only touched under it.
	wmu sync.Mutex
	w   *rawmessage.Writer
	buf bytes.Buffer

	// The reader goroutine reads what the server sends (gortmplib answers
	// its pings and acknowledgements) and records why it stopped.
	readDone chan struct{}
	rmu      sync.Mutex
	rerr     error
	closed   bool
}

// dialRTMP dials, handshakes, connects, creates a stream and publishes the
// key, all within s.Timeout (and ctx): gortmplib closes the socket when the
// context ends, so nothing of a setup that timed out outlives this call.
// Publish is only done once the server's onStatus says so; a refused key
// is an error wrapping ErrRefused.
func dialRTMP(ctx context.Context, t Target, s *Settings) (conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	u, err := url.Parse(t.TCURL())
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadURL, t.Redacted())
	}
	// gortmplib takes the key from the fragment, verbatim.
	u.Fragment = t.Key
	dialed := false
	d := &net.Dialer{}
	cl := &gortmplib.Client{
		URL:       u,
		Publish:   true,
		TLSConfig: s.TLS,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			dialed = err == nil
			return c, err
		},
	}
	if err := cl.Initialize(ctx); err != nil {
		return nil, setupError(ctx, t, s, dialed, err)
	}
	c := &rtmpConn{cl: cl, readDone: make(chan struct{})}
	c.w = rawmessage.NewWriter(&c.buf, nil, false)
	c.w.SetChunkSize(chunkSize)
	go c.readLoop()
	return c, nil
}

// resultRe finds the command name and transaction ID in gortmplib's
// "bad result: &{chunkStream messageStream name id [arguments]}".
var (
	resultRe = regexp.MustCompile(`^bad result: &\{\d+ \d+ (\S+) (\d+) `)
	codeRe   = regexp.MustCompile(`\{code ([A-Za-z0-9._]+)\}`)
)

// setupError classifies a failed setup. Its text never holds the key:
// gortmplib's own messages may quote the server's answer, which may echo it,
// so only the answer's code is kept.
func setupError(ctx context.Context, t Target, s *Settings, dialed bool, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w (%s)", ErrTimeout, s.Timeout)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !dialed {
		return fmt.Errorf("rtmp: dial %s: %s", t.Host, redactKey(err.Error(), t.Key))
	}
	msg := err.Error()
	m := resultRe.FindStringSubmatch(msg)
	if m == nil {
		switch msg {
		case "credentials are required", "authentication error":
			return fmt.Errorf("%w: connect to app %q: %s", ErrRefused, t.App, msg)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("%w (%s)", ErrTimeout, s.Timeout)
		}
		return fmt.Errorf("rtmp: setup with %s: %s", t.Host, redactKey(msg, t.Key))
	}
	code := ""
	if c := codeRe.FindStringSubmatch(msg); c != nil && !strings.Contains(c[1], t.Key) {
		code = ": " + c[1]
	}
	name, id := m[1], m[2]
	switch {
	case id == "1":
		return fmt.Errorf("%w: connect to app %q (%s%s)", ErrRefused, t.App, name, code)
	case id == "4":
		return fmt.Errorf("rtmp: createStream refused (%s%s)", name, code)
	default: // publish: its _error (5) or an onStatus that is not "status"
		return fmt.Errorf("%w: publish (%s%s)", ErrRefused, name, code)
	}
}

func redactKey(s, key string) string {
	if key == "" {
		return s
	}
	s = strings.ReplaceAll(s, key, "****")
	if esc := url.PathEscape(key); esc != key {
		s = strings.ReplaceAll(s, esc, "****")
	}
	return s
}

// readLoop reads until the connection ends; Close joins it.
func (c *rtmpConn) readLoop() {
	defer close(c.readDone)
	for {
		if _, err := c.cl.Read(); err != nil {
			c.rmu.Lock()
			if c.rerr == nil && !c.closed {
				c.rerr = err
			}
			c.rmu.Unlock()
			return
		}
	}
}

// send writes one message whole: a single Write of all its chunks, so a
// ping answer from the reader goroutine (which gortmplib writes on its own)
// can only fall between messages, never inside one.
func (c *rtmpConn) send(m *rawmessage.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.buf.Reset()
	if err := c.w.Write(m); err != nil {
		return err
	}
	_, err := c.cl.NetConn().Write(c.buf.Bytes())
	return err
}

func (c *rtmpConn) writeMetadata(meta map[string]any) error {
	arr := make(amf0.ECMAArray, 0, len(meta))
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		arr = append(arr, amf0.ObjectEntry{Key: k, Value: meta[k]})
	}
	body, err := amf0.Data{"@setDataFrame", "onMetaData", arr}.Marshal()
	if err != nil {
		return err
	}
	return c.send(&rawmessage.Message{ChunkStreamID: csData, Type: typeDataAMF0, MessageStreamID: streamID, Body: body})
}

func (c *rtmpConn) write(m message) error {
	raw := &rawmessage.Message{
		ChunkStreamID:   csVideo,
		Timestamp:       time.Duration(m.ts) * time.Millisecond,
		Type:            typeVideo,
		MessageStreamID: streamID,
		Body:            m.body,
	}
	if m.kind == msgAudio {
		raw.ChunkStreamID, raw.Type = csAudio, typeAudio
	}
	return c.send(raw)
}

func (c *rtmpConn) err() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.rerr
}

// Close closes the connection and waits for the reader goroutine.
func (c *rtmpConn) Close() error {
	c.rmu.Lock()
	c.closed = true
	c.rmu.Unlock()
	c.cl.Close()
	<-c.readDone
	return nil
}
