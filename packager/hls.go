// Package packager serves the CMAF made by transmux as HLS, including
// Low-Latency HLS (RFC 8216bis: partial segments, preload hints, blocking
// playlist reload), from a window kept in memory.
package packager

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// Defaults of HLSSettings.
const (
	DefaultHLSWindow   = 7
	DefaultHLSEndGrace = 30 * time.Second
	// DefaultStartTimeout is the default of HLSSettings.StartTimeout and
	// DASHSettings.StartTimeout.
	DefaultStartTimeout = 10 * time.Second
)

// HLSSettings configure the HLS packager. Zero fields mean their default;
// NewHLS keeps its own copy and never writes into the caller's.
type HLSSettings struct {
	// Window is how many complete segments each media playlist lists and
	// memory keeps. Default 7.
	Window int
	// EndGrace is how long an ended stream's playlists (with EXT-X-ENDLIST)
	// stay served before its state is dropped. Default 30 s.
	EndGrace time.Duration
	// BlockTimeout bounds how long a blocking request (playlist reload with
	// _HLS_msn, a preload-hinted part, the first playlist of a new stream)
	// is held. Default three segment targets (RFC 8216bis 6.2.5.2).
	BlockTimeout time.Duration
	// StartTimeout bounds how long a request for a playlist that has no
	// complete segment yet waits for one: the first request of a stream
	// whose packaging it started (transmux.Service.Watch) waits for the
	// keyframe asked for and the first segment cut. Default 10 s.
	StartTimeout time.Duration

	// tm is the transmuxer's settings (segment and part targets, which are
	// the playlists' target durations), taken from the Service at Attach.
	tm transmux.Settings
}

func (s HLSSettings) withDefaults(tm transmux.Settings) HLSSettings {
	s.tm = tm.WithDefaults()
	if s.Window <= 0 {
		s.Window = DefaultHLSWindow
	}
	if s.EndGrace <= 0 {
		s.EndGrace = DefaultHLSEndGrace
	}
	if s.BlockTimeout <= 0 {
		s.BlockTimeout = 3 * s.tm.SegmentTarget
	}
	if s.StartTimeout <= 0 {
		s.StartTimeout = max(DefaultStartTimeout, s.BlockTimeout)
	}
	return s
}

// HLS packages every published stream as (LL-)HLS and serves it over HTTP.
// Mount it with the prefix stripped, e.g. http.StripPrefix("/hls/", h); it
// then serves "{stream}/index.m3u8" and the files that playlist names.
type HLS struct {
	user HLSSettings // as given, for Attach to fill defaults again
	set  HLSSettings
	log  *slog.Logger

	registry[*hlsStream]
}

// NewHLS makes an HLS packager. logger may be nil (logs are discarded).
func NewHLS(s HLSSettings, logger *slog.Logger) *HLS {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &HLS{user: s, set: s.withDefaults(transmux.Settings{}), log: logger}
	h.init()
	return h
}

// Attach packages every stream that sv transmuxes from now on, sharing its
// CMAF fragments with every other consumer of sv. The playlists' target and
// part target durations are sv's. Every request for a live stream is a
// player's demand on sv (Service.Watch): the first one starts the stream's
// packaging, and it stops once no request came for sv's Idle time. Call it
// once, before streams are published and requests served.
func (h *HLS) Attach(sv *transmux.Service) {
	h.attach(sv, func(tm transmux.Settings) { h.set = h.user.withDefaults(tm) }, h.publish)
}

// publish makes the HLS state of a new stream and returns it as the sink of
// the stream's transmuxer. It runs on the publisher's goroutine.
func (h *HLS) publish(s *media.Stream) transmux.Sink {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	st := newHLSStream(h, s.Name, h.newEpoch())
	st.expect = len(s.Tracks)
	h.replace(h.streams[s.Name], st)
	h.streams[s.Name] = st
	return st
}

// replace is the hook for a new publish of a name whose previous HLS state
// is still held (ended, in its grace period). The old state is dropped and
// the new publish gets a fresh playlist (new epoch, MSN from 0). That is
// deliberate for now: the old playlist carried EXT-X-ENDLIST, and after
// ENDLIST players (hls.js, Safari, ffmpeg) stop reloading, so a playlist
// continued with EXT-X-DISCONTINUITY would only reach players that start
// afterwards, which a fresh playlist serves as well; RFC 8216bis 6.2.1 forbids
// taking ENDLIST back. Continuing the MSN would matter for a publisher that
// drops and reconnects before the end is declared, which needs a delay
// before ENDLIST; DASH does continue its MPD with a new Period (players keep
// polling a static MPD only if told to, so there too the new Period is for
// new and reloading players). Called with h.mu held.
func (h *HLS) replace(old, _ *hlsStream) {
	if old != nil {
		h.stopRemovalLocked(old)
	}
}

// Close ends blocked requests and drops every stream's state. It starts no
// goroutine of its own: the transmux Service that feeds it is closed by its
// owner. Safe to call more than once.
func (h *HLS) Close() { h.close() }

// ServeHTTP serves playlists, init segments, segments and parts. Only GET
// and HEAD are allowed.
func (h *HLS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	req, err := parseHLSRequest(r.URL.Path, r.URL.RawQuery)
	if err != nil {
		if errors.Is(err, ErrBadRequest) {
			http.Error(w, "bad request", http.StatusBadRequest)
		} else {
			http.NotFound(w, r)
		}
		return
	}
	st, done, ok := h.request(w, r, req.stream)
	if !ok {
		return
	}
	defer done()
	st.serve(w, r, &req)
}
