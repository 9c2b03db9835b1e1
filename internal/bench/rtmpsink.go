package bench

import (
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	gortmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"
)

// rtmpSink is an RTMP server that the gateway under test pushes its streams
// to (whipcast: streams[].restream rtmp://ADDR/live/{stream}). It accepts
// every publish and records what each carried (sinkStream); it plays
// nothing back.
type rtmpSink struct {
	ln  net.Listener
	srv *gortmp.Server
	log *logrus.Logger

	mu      sync.Mutex
	streams []*sinkStream
	conns   map[net.Conn]struct{}
	open    sync.WaitGroup // connections being served
	served  chan struct{}
}

// listenRTMP starts the sink on addr (host:port).
func listenRTMP(addr string) (*rtmpSink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	log := logrus.New()
	log.SetOutput(io.Discard) // go-rtmp logs every command, stream keys included
	s := &rtmpSink{ln: ln, log: log, conns: map[net.Conn]struct{}{}, served: make(chan struct{})}
	s.srv = gortmp.NewServer(&gortmp.ServerConfig{OnConnect: s.onConnect})
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is where the sink listens.
func (s *rtmpSink) Addr() net.Addr { return s.ln.Addr() }

func (s *rtmpSink) onConnect(c net.Conn) (io.ReadWriteCloser, *gortmp.ConnConfig) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.open.Add(1)
	s.mu.Unlock()
	h := &sinkHandler{sink: s, conn: c}
	return c, &gortmp.ConnConfig{Handler: h, Logger: s.log}
}

// drain waits up to d for the gateway to close its connections (it does
// when its streams end), then closes the server and what is still open.
func (s *rtmpSink) drain(d time.Duration) {
	done := make(chan struct{})
	go func() { s.open.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
	s.close()
	<-done
}

// close stops the listener and every connection and waits for the server.
func (s *rtmpSink) close() {
	_ = s.srv.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	<-s.served
}

// received returns the publishes so far.
func (s *rtmpSink) received() []*sinkStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.streams)
}

// match picks the publish of stream name: the first whose publish name is
// the stream name (rtmp://host/app/{stream}), or whose app/name path ends
// in it. more counts the further publishes of that name (reconnects).
func match(ss []*sinkStream, name string) (first *sinkStream, more int) {
	for _, s := range ss {
		s.mu.Lock()
		ok := s.name == name || strings.HasSuffix(s.app+"/"+s.name, "/"+name)
		s.mu.Unlock()
		if !ok {
			continue
		}
		if first == nil {
			first = s
		} else {
			more++
		}
	}
	return first, more
}

// sinkHandler serves one RTMP connection: go-rtmp calls it on the
// connection's goroutine.
type sinkHandler struct {
	gortmp.DefaultHandler
	sink   *rtmpSink
	conn   net.Conn
	app    string
	stream *sinkStream
}

func (h *sinkHandler) OnConnect(_ uint32, cmd *rtmpmsg.NetConnectionConnect) error {
	h.app = cmd.Command.App
	return nil
}

func (h *sinkHandler) OnCreateStream(uint32, *rtmpmsg.NetConnectionCreateStream) error {
	return nil
}

func (h *sinkHandler) OnPublish(_ *gortmp.StreamContext, _ uint32, cmd *rtmpmsg.NetStreamPublish) error {
	st := &sinkStream{app: h.app, name: cmd.PublishingName, publish: time.Now()}
	h.sink.mu.Lock()
	h.sink.streams = append(h.sink.streams, st)
	h.sink.mu.Unlock()
	h.stream = st
	return nil
}

func (h *sinkHandler) OnAudio(ts uint32, p io.Reader) error { return h.tag(trackAudio, ts, p) }
func (h *sinkHandler) OnVideo(ts uint32, p io.Reader) error { return h.tag(trackVideo, ts, p) }

func (h *sinkHandler) tag(track int, ts uint32, p io.Reader) error {
	at := time.Now()
	if h.stream == nil {
		return nil // media before publish: not ours to count
	}
	// The header is in the first bytes; the rest is only counted.
	var head [5]byte
	n, _ := io.ReadFull(p, head[:])
	rest, _ := io.Copy(io.Discard, p)
	var t tagInfo
	var ok bool
	if track == trackVideo {
		t, ok = parseVideoTag(head[:n])
	} else {
		t, ok = parseAudioTag(head[:n])
	}
	if !ok {
		t.header = true // too short to be a frame
	}
	h.stream.add(track, ts, at, t, n+int(rest))
	return nil
}

func (h *sinkHandler) OnClose() {
	if h.stream != nil {
		h.stream.mu.Lock()
		h.stream.ended = time.Now()
		h.stream.mu.Unlock()
	}
	h.sink.mu.Lock()
	delete(h.sink.conns, h.conn)
	h.sink.mu.Unlock()
	h.sink.open.Done()
}
