// Package ingest takes WebRTC publishes in: WHIP (RFC 9725) sessions on one
// shared UDP port (pion's ICE UDP mux, plus ICE-TCP on the same port number),
// RTP turned into media.Frames (depacketized, reordered, put on one A/V
// timeline with RTCP Sender Reports) and written to a media.Stream, with
// keyframe requests (PLI) so a keyframe arrives at least every
// KeyframeInterval and whenever a new reader needs one.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/media"
)

// Config holds the Server's settings. The zero value of each field means its
// default; NewServer never writes defaults back into the caller's Config.
type Config struct {
	// UDPPort is the one UDP port for all sessions (ICE UDP mux) and the
	// ICE-TCP port with the same number. 0 picks a free port (tests); the
	// application's default is 8189.
	UDPPort int
	// ListenIP is the IP the UDP and TCP muxes bind to. Default: all.
	ListenIP string
	// PublicIPs, when set, are the only addresses advertised as host
	// candidates (NAT 1:1, containers): the machine's own addresses are
	// replaced, of both families. Default none: the machine's addresses.
	PublicIPs []string
	// ICEServers are the STUN and TURN servers offered to clients (Link
	// headers on WHIP/WHEP OPTIONS and 201); the TURN ones are used by the
	// gateway's own ICE agent too. Default none.
	ICEServers []ICEServer
	// RelayOnly makes the gateway's ICE agent gather and offer only relay
	// candidates, through the TURN servers of ICEServers (a node whose own
	// addresses are not reachable or must not be given out). Default
	// false: host, ICE-TCP and relay candidates.
	RelayOnly bool
	// IncludeLoopback offers loopback candidates (tests, local browsers).
	IncludeLoopback bool
	// KeyframeInterval is the longest wait for a keyframe before a PLI is
	// sent. Default 2s (the HLS segment target).
	KeyframeInterval time.Duration
	// UDPReadBuffer is SO_RCVBUF and SO_SNDBUF of the mux socket. Default
	// 4 MiB: one socket serves every session and the OS default drops
	// packets from ~100 publishers on.
	UDPReadBuffer int
	// MediaTimeout ends a session that received no RTP for this long
	// (after its first packet; the stream is held for a reconnect).
	// Default 10s.
	MediaTimeout time.Duration
	// ICETimeout ends a publish or playback whose PeerConnection has not
	// connected (ICE and DTLS) this long after the answer; a publish's name
	// is free again at once. It also bounds pion's DTLS handshake. Default
	// 10s.
	ICETimeout time.Duration
	// PublishIdleTimeout ends a publish that connected but sent no RTP
	// this long after the answer; its name is free again at once. Default
	// 10s.
	PublishIdleTimeout time.Duration
	// Admission, when set, is asked before each new publisher (admit.go)
	// and may refuse it with a *RefusedError (503). Default nil: every
	// publish is admitted.
	Admission Admission
	// ViewerAdmission, when set, is asked before each new WHEP viewer
	// (admit.go) and may refuse it with a *RefusedError (503). Default
	// nil: every playback is admitted.
	ViewerAdmission ViewerAdmission
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultKeyframeInterval = 2 * time.Second
	defaultUDPReadBuffer    = 4 << 20
	defaultMediaTimeout     = 10 * time.Second
	defaultGatherTimeout    = 5 * time.Second
	// pliMinInterval and pliMinRetry bound the wait for an unanswered
	// PLI (Session.pliRetry); a keyframe since the last PLI allows the next
	// one at once.
	pliMinInterval = 500 * time.Millisecond
	pliMinRetry    = 200 * time.Millisecond
	// pliMinGap is the least time between two PLIs, even after a keyframe
	// answered the first: libwebrtc senders (Chromium, and most browsers)
	// drop a keyframe request that comes within 300 ms of the previous
	// one (as they see it: 50 ms more for the two PLIs' different delays),
	// so an earlier PLI would be lost, not answered. A request that
	// comes sooner waits for it (the transmuxer's request for a short first
	// segment comes ~200 ms after the subscription's).
	pliMinGap = 350 * time.Millisecond
	// pliRetries is how many times an urgent PLI that no keyframe answered
	// within pliMinInterval is repeated (Session.run).
	pliRetries = 1
)

// Server accepts WebRTC publishes and writes them to a media.Registry.
type Server struct {
	reg              *media.Registry
	log              *slog.Logger
	api              *webrtc.API
	keyframeInterval time.Duration
	mediaTimeout     time.Duration
	iceTimeout       time.Duration
	idleTimeout      time.Duration
	iceServers       []ICEServer
	relayOnly        bool
	admission        Admission
	viewerAdmission  ViewerAdmission
	timeouts         timeoutCounters // timeouts.go

	udpConn *net.UDPConn
	udpMux  *ice.UDPMuxDefault
	tcpLn   net.Listener
	tcpMux  *ice.TCPMuxDefault

	mu       sync.Mutex
	sessions map[string]*Session
	viewers  map[string]*Viewer // WHEP playbacks (viewer.go)
	pending  map[string]int     // names of publishes being negotiated (admit.go)
	// pendingView counts the playbacks being negotiated, by stream
	// (admit.go).
	pendingView map[string]int
	closed      bool
	// endedPub and endedView remember recently ended WHIP and WHEP session
	// ids, so that a DELETE after the media ended is 200 (ended.go).
	endedPub  endedIDs
	endedView endedIDs
	nacks     atomic.Uint64  // NACKs sent, counted by nackCounter
	wg        sync.WaitGroup // session and viewer supervisors

	closeOnce sync.Once
}

// NewServer opens the UDP and TCP muxes and prepares the WebRTC stack.
func NewServer(cfg Config, reg *media.Registry) (*Server, error) {
	if reg == nil {
		return nil, errors.New("ingest: nil registry")
	}
	s := &Server{
		reg:              reg,
		log:              cfg.Logger,
		keyframeInterval: cfg.KeyframeInterval,
		mediaTimeout:     cfg.MediaTimeout,
		iceServers:       cfg.ICEServers,
		iceTimeout:       cfg.ICETimeout,
		idleTimeout:      cfg.PublishIdleTimeout,
		relayOnly:        cfg.RelayOnly,
		admission:        cfg.Admission,
		viewerAdmission:  cfg.ViewerAdmission,
		sessions:         make(map[string]*Session),
		pending:          make(map[string]int),
		pendingView:      make(map[string]int),
		viewers:          make(map[string]*Viewer),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.keyframeInterval <= 0 {
		s.keyframeInterval = defaultKeyframeInterval
	}
	if s.mediaTimeout <= 0 {
		s.mediaTimeout = defaultMediaTimeout
	}
	if s.iceTimeout <= 0 {
		s.iceTimeout = defaultICETimeout
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = defaultPublishIdleTimeout
	}
	bufSize := cfg.UDPReadBuffer
	if bufSize <= 0 {
		bufSize = defaultUDPReadBuffer
	}
	if err := s.listen(cfg.ListenIP, cfg.UDPPort, bufSize); err != nil {
		return nil, err
	}
	api, err := s.newAPI(cfg)
	if err != nil {
		s.closeMuxes()
		return nil, err
	}
	s.api = api
	return s, nil
}

// listen binds the UDP socket and a TCP listener on the same port number.
// With port 0 it retries when the TCP side of a free UDP port is taken.
func (s *Server) listen(ip string, port, bufSize int) error {
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
		if err != nil {
			return fmt.Errorf("ingest: listen udp: %w", err)
		}
		bound := uc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(bound)))
		if err != nil {
			uc.Close()
			lastErr = err
			if port != 0 {
				break
			}
			continue
		}
		// Best effort: the kernel caps these at net.core.rmem_max/wmem_max.
		if err := uc.SetReadBuffer(bufSize); err != nil {
			s.log.Warn("ingest: set UDP receive buffer", "err", err)
		}
		if err := uc.SetWriteBuffer(bufSize); err != nil {
			s.log.Warn("ingest: set UDP send buffer", "err", err)
		}
		s.udpConn = uc
		s.tcpLn = ln
		s.udpMux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: newBatchConn(uc)}) // udpbatch_linux.go
		s.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: ln, ReadBufferSize: 64, WriteBufferSize: 4 << 20})
		return nil
	}
	return fmt.Errorf("ingest: listen tcp on the UDP port: %w", lastErr)
}

func (s *Server) closeMuxes() {
	if s.udpMux != nil {
		_ = s.udpMux.Close() // closes the UDP conn
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close() // closes the listener
	}
}

// h264Profiles are the profile-level-ids answered. pion matches H.264 by
// packetization-mode and the first two bytes (profile_idc, constraint flags),
// so this covers what browsers and OBS offer: baseline, constrained baseline,
// main, constrained high and high, each in both packetization modes.
var h264Profiles = []string{"42001f", "42e01f", "4d001f", "640c1f", "64001f"}

func (s *Server) newAPI(cfg Config) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	// Opus and H.264 only: with nothing else registered, the answer picks
	// H.264 even when the offer lists VP8 first.
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	fb := []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	pt := webrtc.PayloadType(96)
	for _, pm := range []string{"1", "0"} {
		for _, prof := range h264Profiles {
			fmtp := "level-asymmetry-allowed=1;packetization-mode=" + pm + ";profile-level-id=" + prof
			if err := m.RegisterCodec(webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: fb},
				PayloadType:        pt,
			}, webrtc.RTPCodecTypeVideo); err != nil {
				return nil, err
			}
			if err := m.RegisterCodec(webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=" + strconv.Itoa(int(pt))},
				PayloadType:        pt + 1,
			}, webrtc.RTPCodecTypeVideo); err != nil {
				return nil, err
			}
			pt += 2
		}
	}
	ir := &interceptor.Registry{}
	// First, so that every RTCP write (the publishers' NACKs) passes
	// through it.
	ir.Add(nackCounterFactory{&s.nacks})
	// Before the report and TWCC interceptors: they read the header it
	// parses (headercache.go).
	ir.Add(headerCacheFactory{})
	// Publishers are NACKed by their reorder buffer (reorder.go), the
	// moment a hole shows and again every measured round trip, not by
	// pion's generator, whose fixed 100 ms timer knows neither the RTT nor
	// which holes were already repaired. pion's responder stays: WHEP
	// viewers NACK us. The video codecs above carry the nack feedback.
	responder, err := nack.NewResponderInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(responder)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, ir); err != nil {
		return nil, err
	}

	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(s.udpMux)
	se.SetICETCPMux(s.tcpMux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(publicIPRules(cfg.PublicIPs)...); err != nil {
			return nil, fmt.Errorf("ingest: public IPs: %w", err)
		}
	}
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if cfg.ListenIP != "" {
		if ip := net.ParseIP(cfg.ListenIP); ip != nil && !ip.IsUnspecified() {
			se.SetIPFilter(func(c net.IP) bool { return c.Equal(ip) })
		}
	}
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	// pion's default DTLS handshake bound is 30 s; a handshake that has
	// not finished by the ICE timeout is ended by the supervisor anyway.
	dtlsTimeout := s.iceTimeout
	se.SetDTLSConnectContextMaker(func() (context.Context, func()) {
		return context.WithTimeout(context.Background(), dtlsTimeout)
	})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// Addr returns the bound UDP and TCP addresses.
func (s *Server) Addr() (udp, tcp net.Addr) {
	return s.udpConn.LocalAddr(), s.tcpLn.Addr()
}

// Session returns the live session with that id.
func (s *Server) Session(id string) (*Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	return ss, ok
}

// Sessions returns how many sessions are live.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Publish starts a publish of stream from an SDP offer and returns the
// session and the SDP answer, which carries all our ICE candidates (no
// trickle needed on our side). On error nothing is left behind.
func (s *Server) Publish(ctx context.Context, stream, offerSDP string) (*Session, string, error) {
	if err := media.ValidateName(stream); err != nil {
		return nil, "", err
	}
	// Admission first: a refusal under overload should cost nothing.
	release, err := s.admit(stream)
	if err != nil {
		return nil, "", err
	}
	defer release()
	info, err := checkOffer(offerSDP)
	if err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, "", ErrServerClosed
	}

	sess := newSession(s, stream, info)
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	// The name is claimed now (a second publisher gets 409 at once) but the
	// stream is announced to its consumers only with its first frame
	// (Session.write): a negotiation that fails, or ICE that never
	// connects, starts no outputs and emits no stream.started, and the
	// OnPublish listeners (transmuxer, transcoder, filters, restream) open
	// their codecs on the session's media goroutine, not this request's.
	st, err := s.reg.Claim(stream, []*media.Track{video, audio}, sess.requestKeyframe)
	if errors.Is(err, media.ErrStreamBusy) && s.takeOverStale(stream) {
		st, err = s.reg.Claim(stream, []*media.Track{video, audio}, sess.requestKeyframe)
	}
	if err != nil {
		return nil, "", err
	}
	sess.stream = st
	if origin, ok := st.ResumeOrigin(); ok {
		// A held stream resumed (reconnect window): go on after its last frame.
		sess.resumed = true
		sess.tl.SetOrigin(origin)
	}
	answer, err := sess.negotiate(ctx, offerSDP)
	if err != nil {
		sess.abort()
		return nil, "", err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sess.abort()
		return nil, "", ErrServerClosed
	}
	s.sessions[sess.id] = sess
	s.wg.Add(1)
	s.mu.Unlock()
	sess.answered = time.Now() // the ICE and idle timeouts count from here
	go func() {
		defer s.wg.Done()
		sess.run()
	}()
	s.log.Info("ingest: publish started", "stream", stream, "session", sess.id)
	return sess, answer, nil
}

func (s *Server) remove(sess *Session) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
		s.endedPub.add(sess.id, sess.name, time.Now())
	}
	s.mu.Unlock()
}

// CloseStream ends the publish of stream, if any, and waits until it is
// gone (a room being deleted ends its participants). The stream ends at once,
// without the reconnect window a dropped publisher gets. It reports whether a
// publish was ended.
func (s *Server) CloseStream(stream string) bool {
	found := s.sessionNamed(stream)
	if found == nil {
		return false
	}
	found.end(ErrStreamClosed) // ends the stream now: no reconnect window
	<-found.done
	return true
}

// Close ends every session, closes the muxes and waits for all goroutines.
// Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		ss := make([]*Session, 0, len(s.sessions))
		for _, x := range s.sessions {
			ss = append(ss, x)
		}
		vs := make([]*Viewer, 0, len(s.viewers))
		for _, x := range s.viewers {
			vs = append(vs, x)
		}
		s.mu.Unlock()
		for _, x := range ss {
			x.end(ErrServerClosed)
		}
		for _, x := range vs {
			x.end(ErrServerClosed)
		}
		s.wg.Wait()
		s.closeMuxes()
	})
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sessionNamed returns the live session publishing stream, or nil.
func (s *Server) sessionNamed(stream string) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.sessions {
		if x.name == stream {
			return x
		}
	}
	return nil
}
