// Package web is whipcast's HTTP surface: it mounts the WHIP ingest handler
// and the HLS packager under their prefixes, and serves health checks. Each
// mounted handler owns its own protocol; web only routes, authenticates and
// logs.
package web

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/whipcast/whipcast/ingest"
)

// Handlers are the parts web mounts.
type Handlers struct {
	// WHIP serves /whip/ (RFC 9725); it sees paths with the prefix stripped.
	WHIP http.Handler
	// WHEP serves /whep/ (draft-ietf-wish-whep playback); it sees paths with
	// the prefix stripped and does its own play auth.
	WHEP http.Handler
	// HLS serves /hls/; it sees paths with the prefix stripped.
	HLS http.Handler
	// DASH serves /dash/; it sees paths with the prefix stripped. When set,
	// GET /time is served too: the clock its MPDs name (UTCTiming).
	DASH http.Handler
	// Ready reports whether the gateway accepts publishes; nil means always.
	Ready func() error
	// API serves /v1/ (paths not stripped). Nil: no API.
	API http.Handler
	// Metrics serves /metrics and counts WHIP, HLS and DASH requests. Nil:
	// no metrics.
	Metrics *Metrics
	// PlayAuth, when set, gates every /hls/ and /dash/ file (Auth.PlayAuth).
	PlayAuth func(r *http.Request, stream string) error
	// UI serves the embedded web pages: / (dashboard), /publish, /watch.
	UI bool
	// RateLimit, when set, limits the requests of each client IP to
	// /whip/, /whep/ and /v1/ (limits.rate): 429 past it.
	RateLimit *RateLimiter
}

// NewHandler returns the root handler of the gateway.
func NewHandler(h Handlers, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	media := func(format string, next http.Handler) http.Handler {
		if h.PlayAuth != nil {
			next = gatePlay(h.PlayAuth, next)
		}
		if h.Metrics != nil {
			next = h.Metrics.countMedia(format, next)
		}
		return next
	}
	if h.WHIP != nil {
		whip := h.WHIP
		if h.Metrics != nil {
			whip = h.Metrics.countPublish(whip)
		}
		// Outermost: a request over its rate costs nothing else and is
		// not a publish attempt.
		mux.Handle("/whip/", h.RateLimit.Wrap(RouteWHIP, http.StripPrefix("/whip/", whip)))
	}
	if h.WHEP != nil {
		mux.Handle("/whep/", h.RateLimit.Wrap(RouteWHEP, http.StripPrefix("/whep/", h.WHEP)))
	}
	if h.HLS != nil {
		mux.Handle("/hls/", http.StripPrefix("/hls/", media("hls", h.HLS)))
	}
	if h.DASH != nil {
		mux.Handle("/dash/", http.StripPrefix("/dash/", media("dash", h.DASH)))
		mux.HandleFunc("GET /time", serveTime)
	}
	if h.API != nil {
		mux.Handle("/v1/", h.RateLimit.Wrap(RouteAPI, h.API))
	}
	if h.Metrics != nil {
		mux.Handle("GET /metrics", h.Metrics.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if h.Ready != nil {
			if err := h.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	if h.UI {
		mountUI(mux)
	} else {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, index)
		})
	}
	return accessLog(mux, log)
}

const index = `whipcast: WebRTC in, broadcast out.

  publish   POST /whip/{stream}              (WHIP, RFC 9725; Content-Type: application/sdp)
  watch     POST /whep/{stream}              (WHEP, WebRTC playback; Content-Type: application/sdp)
            GET  /hls/{stream}/index.m3u8    (Low-Latency HLS)
            GET  /dash/{stream}/manifest.mpd (low-latency MPEG-DASH)
  health    GET  /healthz, /readyz
`

// serveTime is the clock DASH players sync to (ISO/IEC 23009-1 5.8.5.7,
// urn:mpeg:dash:utc:http-iso:2014): the UTC time in ISO 8601 with
// milliseconds. Cross-origin players read it, so CORS is open.
func serveTime(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Access-Control-Allow-Origin", "*")
	fmt.Fprint(w, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
}

// BearerAuth returns a WHIP auth callback that requires
// "Authorization: Bearer <token>" when token is not empty: ingest.ErrUnauthorized
// without credentials (401), ingest.ErrForbidden with wrong ones (403). The
// comparison takes constant time so the token cannot be guessed byte by byte.
func BearerAuth(token string) func(r *http.Request, stream string) error {
	if token == "" {
		return nil
	}
	return func(r *http.Request, _ string) error {
		got, ok := bearer(r)
		if !ok {
			return ingest.ErrUnauthorized
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			return ingest.ErrForbidden
		}
		return nil
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets chunked/streamed responses (blocking LL-HLS parts) through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog logs each request at debug level, and errors (5xx) at warn. A
// 503 is a refusal whose owner logs it once per burst (admission control,
// shutdown, /readyz), so it stays at debug: a wave of refused publishers
// must not turn into a wave of warnings. The query string is left out:
// players may carry tokens there.
func accessLog(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelDebug
		if sw.status >= 500 && sw.status != http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
		// Checked first: the arguments would be boxed (allocated) for
		// every media request even with debug logging off.
		if log.Enabled(r.Context(), level) {
			log.Log(r.Context(), level, "http", "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "bytes", sw.bytes, "dur", time.Since(start).Round(time.Microsecond),
				"remote", r.RemoteAddr)
		}
	})
}
