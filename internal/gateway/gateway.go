// Package gateway wires whipcast's parts from a config: the stream registry,
// WebRTC ingest, the HLS packager and the HTTP surface. cmd/whipcast and the
// end-to-end tests both start the gateway through it, so the tests run
// exactly what users run.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"time"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/events"
	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/internal/admission"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs"
	"github.com/whipcast/whipcast/packager"
	"github.com/whipcast/whipcast/rooms"
	"github.com/whipcast/whipcast/stages"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/stages/composite"
	"github.com/whipcast/whipcast/stages/filter"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/web"
)

// RTMPTLS, when set before New, is the TLS client configuration of rtmps
// outputs (a test CA); nil means the system roots.
var RTMPTLS *tls.Config

// ShutdownTimeout bounds the graceful part of Run's shutdown.
const ShutdownTimeout = 10 * time.Second

// Gateway is a running whipcast: listeners are open once New returns.
type Gateway struct {
	// Registry holds the live streams.
	Registry *media.Registry
	// Restream runs the RTMP(S) outputs of the `streams:` rules.
	Restream *outputs.Restream
	// AAC is the Opus→AAC stage shared by HLS/DASH/recordings and RTMP.
	AAC *stages.AAC
	// Filters runs the `streams[].filters` stages (filters.go).
	Filters *filter.Stages

	keyframeInterval time.Duration
	motion           *motionDetectors // motion.go
	filterChains     *filterChains    // filters.go

	cfg    *config.Config
	log    *slog.Logger
	ingest *ingest.Server
	cmaf   *transmux.Service
	hls    *packager.HLS
	dash   *packager.DASH // nil when dash.enabled is false
	rec    *recording     // recorder.go
	events *events.Bus    // api.go
	rooms  *rooms.Manager // rooms.go
	// composites mixes rooms into {room}/composite (composite.go).
	composites *composite.Manager
	ln         net.Listener
	srv        *http.Server
	https      *httpsSetup // http.tls (tls.go); nil: plain HTTP

	// admission is limits.*, asked by ingest before each new publisher
	// (limits.go).
	admission *admission.Controller
	// rate is limits.rate on WHIP, WHEP and the API; nil when off
	// (limits.go).
	rate *web.RateLimiter
}

// New opens the HTTP listener and the WebRTC media port and wires the parts.
// Nothing is served until Run.
func New(cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	// A publisher that drops keeps its stream (and so every output) for
	// webrtc.reconnect_window; stream.ended and the outputs' end wait for it.
	reg := media.NewRegistryWith(media.RegistrySettings{ReconnectWindow: cfg.WebRTC.ReconnectWindow})
	g := &Gateway{Registry: reg, cfg: cfg, log: log, events: &events.Bus{}}
	g.watchStreams()

	kfi := cfg.WebRTC.KeyframeInterval
	if kfi == 0 {
		kfi = cfg.HLS.Segment
		// RTMP services want a keyframe at least every 2 s.
		if cfg.RestreamEnabled() && kfi > 2*time.Second {
			kfi = 2 * time.Second
		}
	}
	g.keyframeInterval = kfi
	g.admission = g.newAdmission()
	g.rate = newRateLimiter(cfg)
	icfg := ingest.Config{
		UDPPort:          cfg.WebRTC.Port,
		ListenIP:         cfg.WebRTC.ListenIP,
		PublicIPs:        cfg.WebRTC.PublicIPs,
		ICEServers:       iceServers(cfg.WebRTC.ICEServers),
		RelayOnly:        cfg.WebRTC.ICETransport == config.ICETransportRelay,
		IncludeLoopback:  cfg.WebRTC.Loopback(),
		KeyframeInterval: kfi,
		UDPReadBuffer:    int(cfg.WebRTC.UDPBuffer),
		Admission:        g.admission,
		ViewerAdmission:  g.admission,
		Logger:           log.With("component", "ingest"),
	}
	ingestLimits(&icfg, cfg.Limits)
	in, err := ingest.NewServer(icfg, g.Registry)
	if err != nil {
		g.admission.Close()
		return nil, fmt.Errorf("webrtc port %d: %w", cfg.WebRTC.Port, err)
	}
	g.ingest = in
	g.startAdmission()
	g.startRooms()
	g.startComposites()

	// One transmuxer per stream while something wants it (an HLS or DASH
	// player, a recording or origin rule, an API recording); every packager
	// and output shares its CMAF. A stream nobody watches costs no transmux
	// and no Opus→AAC transcode.
	g.cmaf = transmux.NewService(transmux.Settings{SegmentTarget: cfg.HLS.Segment, PartTarget: cfg.HLS.Part, Idle: cfg.HLS.Idle},
		log.With("component", "transmux"))
	g.hls = packager.NewHLS(packager.HLSSettings{
		Window:   cfg.HLS.Window,
		EndGrace: cfg.HLS.Grace,
	}, log.With("component", "hls"))
	g.hls.Attach(g.cmaf)
	var dash http.Handler
	if cfg.DASH.Enabled {
		// A second consumer of the same CMAF: no second transmuxer.
		g.dash = packager.NewDASH(packager.DASHSettings{
			Window:            cfg.HLS.Window,
			EndGrace:          cfg.HLS.Grace,
			DisableLowLatency: !cfg.DASH.LowLatency,
			TargetLatency:     cfg.DASH.TargetLatency,
		}, log.With("component", "dash"))
		g.dash.Attach(g.cmaf)
		dash = g.dash
	}
	if err := g.startRecording(); err != nil {
		g.closeParts()
		return nil, err
	}
	// HLS, DASH, recordings (audio.codec aac) and RTMP outputs read video +
	// AAC from the Opus→AAC stage: one transcode per stream, refcounted, while
	// at least one of them needs it. The transmux service acquires it only
	// while the stream is packaged.
	aac := stages.NewAAC(codec.AACSettings{Bitrate: int(cfg.Audio.Bitrate)}, log.With("component", "aac"))
	g.AAC = aac
	switch {
	case cfg.Audio.Codec != config.AudioAAC:
	case codec.Available:
		g.cmaf.SetSource(aac.Acquire)
	default:
		log.Warn("audio.codec is aac but this build has no codec support: HLS, DASH and recordings carry Opus (passthrough)")
	}
	if cfg.HLS.Always {
		g.cmaf.Pin(func(*media.Stream) bool { return true })
	}
	g.cmaf.Attach(g.Registry)

	rules := make([]outputs.Rule, len(cfg.Streams))
	for i, r := range cfg.Streams {
		rules[i] = outputs.Rule{Match: r.Match}
		for _, d := range r.Restream {
			rules[i].Restream = append(rules[i].Restream, outputs.Destination{URL: d.URL, Enhanced: d.Enhanced, MaxRetries: d.MaxRetries})
		}
	}
	g.Restream = outputs.NewRestream(outputs.RestreamSettings{Rules: rules, AudioBitrate: int(cfg.Audio.Bitrate), TLS: RTMPTLS,
		OnState: g.outputEvent}, aac, log.With("component", "restream"))
	if g.Restream.Enabled() && !codec.Available {
		log.Warn("restream configured but this build has no codec support: only enhanced (E-RTMP Opus) RTMP outputs run")
	}
	g.Restream.Attach(g.Registry)
	g.startFilters()
	g.startMotion()

	https, err := newTLS(cfg.HTTP.TLS)
	if err != nil {
		g.closeParts()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		https.close()
		g.closeParts()
		return nil, fmt.Errorf("http.addr: %w", err)
	}
	g.ln, g.https = ln, https
	handlers := g.webHandlers() // api.go
	handlers.HLS, handlers.DASH = g.hls, dash
	handlers.WHIP = ingest.NewWHIPHandler(in, g.auth().PublishAuth(), log.With("component", "whip"))
	handlers.WHEP = ingest.NewWHEPHandler(in, g.auth().PlayAuth(), log.With("component", "whep"))
	handlers.RateLimit = g.rate
	g.registerPlaybackMetrics(handlers.Metrics)
	g.registerLimitMetrics(handlers.Metrics)
	root := web.NewHandler(handlers, log.With("component", "http"))
	if https != nil && cfg.HTTP.TLS.HSTS > 0 {
		root = hsts(cfg.HTTP.TLS.HSTS, root)
	}
	g.srv = &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if https != nil {
		g.srv.TLSConfig = https.tls
	}
	if cfg.Auth.PublishToken == "" && cfg.Auth.JWTSecret == "" && !isLoopback(ln.Addr()) {
		log.Warn("no auth.publish_token set: anyone who reaches this port may publish", "http", ln.Addr().String())
	}
	return g, nil
}

// Packaged counts the streams being transmuxed now (on demand: players,
// recording and origin rules, API recordings).
func (g *Gateway) Packaged() int { return g.cmaf.Running() }

// HTTPAddr is the bound HTTP address (useful with port 0).
func (g *Gateway) HTTPAddr() net.Addr { return g.ln.Addr() }

// WebRTCAddr is the bound WebRTC UDP address.
func (g *Gateway) WebRTCAddr() net.Addr {
	udp, _ := g.ingest.Addr()
	return udp
}

// Run serves until ctx is done, then stops accepting, ends publishes (HLS
// playlists get EXT-X-ENDLIST) and closes everything it started.
func (g *Gateway) Run(ctx context.Context) error {
	udp, tcp := g.ingest.Addr()
	scheme := "http"
	if g.https != nil {
		scheme = "https"
	}
	g.log.Info("whipcast running", scheme, g.ln.Addr().String(), "webrtc_udp", udp.String(), "webrtc_tcp", tcp.String())
	errc := make(chan error, 1)
	go func() {
		if g.https != nil {
			// Certificates come from TLSConfig.GetCertificate.
			errc <- g.srv.ServeTLS(g.ln, "", "")
			return
		}
		errc <- g.srv.Serve(g.ln)
	}()
	acmeErr := make(chan error, 1)
	g.https.serveACME(acmeErr)
	var err error
	served := false
	select {
	case err = <-errc:
		served = true
	case err = <-acmeErr:
	case <-ctx.Done():
		g.log.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	g.https.shutdown(sctx)
	if serr := g.srv.Shutdown(sctx); err == nil {
		err = serr
	}
	if !served {
		<-errc
	}
	g.https.close()
	g.closeParts()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (g *Gateway) closeParts() {
	if g.ingest != nil {
		_ = g.ingest.Close()
	}
	if g.admission != nil {
		g.admission.Close()
	}
	if g.rooms != nil {
		g.rooms.Close()
	}
	if g.composites != nil {
		g.composites.Close()
	}
	if g.Restream != nil {
		g.Restream.Close() // its runs, which the registry joins, then stop their pushers at once
	}
	g.Registry.Close() // joins its consumers (stream.ended) before the bus closes
	if g.Filters != nil {
		g.Filters.Close()
	}
	if g.motion != nil {
		g.motion.close()
	}
	if g.cmaf != nil {
		g.cmaf.Close()
	}
	g.stopRecording()
	if g.hls != nil {
		g.hls.Close()
	}
	if g.dash != nil {
		g.dash.Close()
	}
	g.events.Close()
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// iceServers turns webrtc.ice_servers into ingest's settings.
func iceServers(in []config.ICEServer) []ingest.ICEServer {
	out := make([]ingest.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, ingest.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential, Secret: s.Secret, TTL: s.TTL})
	}
	return out
}
