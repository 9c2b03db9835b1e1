package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/whipcast/whipcast/media"
)

// maxWHIPBody bounds an offer or a trickle fragment.
const maxWHIPBody = 64 << 10

// publishTimeout bounds ICE gathering for one POST.
const publishTimeout = 10 * time.Second

// NewWHIPHandler serves WHIP (RFC 9725) for s. It expects the web layer to
// mount it as http.StripPrefix("/whip/", h), so it sees paths relative to
// the prefix.
//
// URL scheme. Stream names may contain "/", so the session resource is the
// endpoint URL plus a query parameter, never a path suffix:
//
//	POST   /whip/{stream}               create a session (application/sdp) → 201, Location
//	PATCH  /whip/{stream}?session={id}  trickle ICE (application/trickle-ice-sdpfrag) → 204,
//	                                     or an ICE restart (If-Match: *) → 200 with the new fragment
//	DELETE /whip/{stream}?session={id}  end the publish → 200 (also when it already ended)
//	OPTIONS any                          CORS preflight, Accept-Post/Accept-Patch, ICE servers → 204
//
// One leading "/" is tolerated, so mounting with StripPrefix("/whip") works
// too. The Location header is the absolute path of the POST's URL (prefix
// included, taken from the request line) with "?session={id}"; a session id
// that does not belong to {stream} is 404, and so is one that never existed
// or ended more than 5 minutes (or 1024 sessions) ago.
//
// The 201 and OPTIONS carry Accept-Patch: application/trickle-ice-sdpfrag
// and one Link rel="ice-server" per configured STUN/TURN URL (RFC 9725
// §4.6; on OPTIONS only when auth lets the request in).
//
// Status codes: malformed offer or no H.264/Opus → 400 with a one-line
// text/plain reason; bad stream name → 400; stream busy → 409; body over
// 64 KiB → 413; wrong Content-Type → 415; a PATCH: see serveTrickle and
// Session.PatchICE (ICE restart 200, stale If-Match 412, new ice-ufrag
// without If-Match: * 422, malformed 400); refused by
// admission control (Config.Admission: too many publishers, CPU or
// scheduling lag too high) → 503 with Retry-After and "overloaded: {reason}",
// before the offer is even parsed.
//
// auth, when not nil, is called for POST, PATCH and DELETE with the stream
// name; it returns nil, ErrUnauthorized (401, e.g. no Authorization: Bearer)
// or ErrForbidden (403); any other error is 403 too.
func NewWHIPHandler(s *Server, auth func(r *http.Request, stream string) error, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return &whipHandler{srv: s, auth: auth, log: log}
}

type whipHandler struct {
	srv  *Server
	auth func(r *http.Request, stream string) error
	log  *slog.Logger
}

func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", allowedHeaders)
	h.Set("Access-Control-Expose-Headers", exposedHeaders)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, strings.ReplaceAll(msg, "\n", " ")+"\n")
}

func etag(id string) string { return `"` + id + `"` }

func (h *whipHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setCORS(w.Header())
	stream := strings.TrimPrefix(r.URL.Path, "/")
	sessionID := r.URL.Query().Get("session")
	switch r.Method {
	case http.MethodOptions:
		serveOptions(w, r, h.srv, h.auth, stream)
		return
	case http.MethodPost:
		if sessionID != "" {
			h.methodNotAllowed(w, "PATCH, DELETE, OPTIONS")
			return
		}
		h.post(w, r, stream)
	case http.MethodPatch, http.MethodDelete:
		if sessionID == "" {
			h.methodNotAllowed(w, "POST, OPTIONS")
			return
		}
		h.session(w, r, stream, sessionID)
	default:
		if sessionID == "" {
			h.methodNotAllowed(w, "POST, OPTIONS")
		} else {
			h.methodNotAllowed(w, "PATCH, DELETE, OPTIONS")
		}
	}
}

func (h *whipHandler) methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	httpError(w, http.StatusMethodNotAllowed, "method not allowed")
}

func (h *whipHandler) authorize(w http.ResponseWriter, r *http.Request, stream string) bool {
	return authorize(w, r, h.auth, stream, "whip")
}

// authorize runs an auth callback and answers 401 or 403 when it refuses.
func authorize(w http.ResponseWriter, r *http.Request, auth func(*http.Request, string) error, stream, realm string) bool {
	if auth == nil {
		return true
	}
	err := auth(r, stream)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrUnauthorized):
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
		httpError(w, http.StatusUnauthorized, "unauthorized")
	default:
		httpError(w, http.StatusForbidden, "forbidden")
	}
	return false
}

// readBody reads a body of the given media type, answering 415/413/400.
func readBody(w http.ResponseWriter, r *http.Request, wantType string) (string, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, wantType) {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be "+wantType)
		return "", false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWHIPBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, "body larger than 64 KiB")
		} else {
			httpError(w, http.StatusBadRequest, "reading body: "+err.Error())
		}
		return "", false
	}
	return string(body), true
}

func (h *whipHandler) post(w http.ResponseWriter, r *http.Request, stream string) {
	serveOffer(w, r, stream, h.auth, "whip", h.log, func(ctx context.Context, offer string) (resource, string, error) {
		sess, answer, err := h.srv.Publish(ctx, stream, offer)
		if err != nil {
			return nil, "", err
		}
		return sess, answer, nil
	}, h.srv)
}

// resource is a WHIP or WHEP session as its POST answers it.
type resource interface {
	ID() string
	ETag() string
}

// serveOffer is the POST of WHIP (realm "whip") and WHEP ("whep"): the
// stream name, auth and the offer checked, then start (Publish or Play)
// bounded by publishTimeout, and the 201 with Location, ETag, Link
// ice-servers and the answer; a failure is its status (ErrorStatus) with
// Retry-After when admission refused.
func serveOffer(w http.ResponseWriter, r *http.Request, stream string, auth func(*http.Request, string) error,
	realm string, log *slog.Logger, start func(context.Context, string) (resource, string, error), srv *Server) {
	if err := media.ValidateName(stream); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !authorize(w, r, auth, stream, realm) {
		return
	}
	offer, ok := readBody(w, r, "application/sdp")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	res, answer, err := start(ctx, offer)
	if err != nil {
		code := ErrorStatus(err)
		if code == http.StatusInternalServerError {
			log.Error(realm+": session not started", "stream", stream, "err", err)
		}
		setRetryAfter(w.Header(), err)
		httpError(w, code, err.Error())
		return
	}
	w.Header().Set("Location", requestPath(r)+"?session="+url.QueryEscape(res.ID()))
	w.Header().Set("ETag", res.ETag())
	createdHeaders(w.Header(), srv, stream)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// setRetryAfter adds Retry-After (RFC 9110 §10.2.3, in seconds) to the 503
// of a publish refused by admission control.
func setRetryAfter(h http.Header, err error) {
	var re *RefusedError
	if errors.As(err, &re) && re.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((re.RetryAfter+time.Second-1)/time.Second)))
	}
}

// requestPath is the path the client used, before any StripPrefix.
func requestPath(r *http.Request) string {
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
		return u.EscapedPath()
	}
	return r.URL.EscapedPath()
}

func (h *whipHandler) session(w http.ResponseWriter, r *http.Request, stream, id string) {
	sess, ok := h.srv.Session(id)
	if !ok || sess.Stream() != stream {
		// A DELETE of a session that already ended (the client closed its
		// PeerConnection first) is 200: DELETE is idempotent. It ends
		// nothing: a publish that resumed the stream has its own id.
		if r.Method == http.MethodDelete && h.srv.SessionEnded(id, stream) {
			if h.authorize(w, r, stream) {
				w.WriteHeader(http.StatusOK)
			}
			return
		}
		httpError(w, http.StatusNotFound, "session not found")
		return
	}
	if !h.authorize(w, r, stream) {
		return
	}
	if r.Method == http.MethodDelete {
		sess.Close()
		w.WriteHeader(http.StatusOK)
		return
	}
	serveTrickle(w, r, h.srv, stream, sess.PatchICE)
}

// serveTrickle answers a PATCH on a WHIP or WHEP session resource (RFC 9725
// §4.3): a trickle → 204; an ICE restart (If-Match: *) → 200 with the
// gateway's new ice-ufrag, ice-pwd and candidates as
// application/trickle-ice-sdpfrag, the new ETag and the Link ice-server
// headers (fresh TURN credentials, §4.6); a stale ETag → 412. A refused
// restart leaves the session running.
func serveTrickle(w http.ResponseWriter, r *http.Request, s *Server, stream string, patch func(ctx context.Context, ifMatch, frag string) (*ICERestart, error)) {
	frag, ok := readBody(w, r, trickleType)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	res, err := patch(ctx, strings.TrimSpace(r.Header.Get("If-Match")), frag)
	if err != nil {
		httpError(w, ErrorStatus(err), err.Error())
		return
	}
	if res == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("ETag", res.ETag)
	addLinks(w.Header(), s, stream)
	w.Header().Set("Content-Type", trickleType)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, res.Fragment)
}

// ErrorStatus is the HTTP status of an error of Publish, Play, Trickle or
// AddCandidate, shared by WHIP, WHEP and the room socket so that each
// refusal reads the same everywhere: 400 a bad name, offer or candidate; 404
// a stream that is not live or an unknown session; 409 a stream already
// published; 412 a stale If-Match; 422 new ICE credentials without
// If-Match: * (RFC 9725 §4.3.2) or on the room socket; 503 shutting down or
// refused by admission control (ErrOverloaded); 500 anything else.
func ErrorStatus(err error) int {
	switch {
	case errors.Is(err, media.ErrBadName), errors.Is(err, ErrBadOffer), errors.Is(err, ErrNoVideoCodec),
		errors.Is(err, ErrNoAudioCodec), errors.Is(err, ErrBadTrickle):
		return http.StatusBadRequest
	case errors.Is(err, media.ErrStreamNotFound), errors.Is(err, ErrSessionNotFound):
		return http.StatusNotFound
	case errors.Is(err, media.ErrStreamBusy):
		return http.StatusConflict
	case errors.Is(err, ErrICERestart):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrETagMismatch):
		return http.StatusPreconditionFailed
	case errors.Is(err, ErrServerClosed), errors.Is(err, media.ErrRegistryClosed), errors.Is(err, ErrOverloaded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
