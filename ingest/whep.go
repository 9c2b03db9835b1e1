package ingest

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// NewWHEPHandler serves WHEP (draft-ietf-wish-whep) playback for s, mounted
// like the WHIP handler: http.StripPrefix("/whep/", h). The URL scheme is
// WHIP's (see NewWHIPHandler):
//
//	POST   /whep/{stream}               start watching (application/sdp offer, recvonly) → 201, Location, answer
//	PATCH  /whep/{stream}?session={id}  trickle ICE → 204, or an ICE restart (If-Match: *) → 200
//	DELETE /whep/{stream}?session={id}  stop watching → 200 (also after the playback ended)
//	OPTIONS any                          CORS preflight, Accept-Post/Accept-Patch, ICE servers → 204
//
// Status codes: stream not live → 404; malformed offer, no receiving
// m-line, or no H.264 the viewer can take → 400; refused by admission
// control (Config.ViewerAdmission: too many viewers of the stream or in
// all) → 503 with Retry-After and "overloaded: {reason}"; the rest as WHIP.
//
// auth, when not nil, is the play check (web.Auth.PlayAuth: a play token
// or a JWT with perm "play"), called for POST, PATCH and DELETE.
func NewWHEPHandler(s *Server, auth func(r *http.Request, stream string) error, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return &whepHandler{srv: s, auth: auth, log: log}
}

type whepHandler struct {
	srv  *Server
	auth func(r *http.Request, stream string) error
	log  *slog.Logger
}

func (h *whepHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setCORS(w.Header())
	stream := strings.TrimPrefix(r.URL.Path, "/")
	id := r.URL.Query().Get("session")
	allow := "POST, OPTIONS"
	if id != "" {
		allow = "PATCH, DELETE, OPTIONS"
	}
	switch {
	case r.Method == http.MethodOptions:
		serveOptions(w, r, h.srv, h.auth, stream)
	case r.Method == http.MethodPost && id == "":
		h.post(w, r, stream)
	case (r.Method == http.MethodPatch || r.Method == http.MethodDelete) && id != "":
		h.session(w, r, stream, id)
	default:
		w.Header().Set("Allow", allow)
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

func (h *whepHandler) post(w http.ResponseWriter, r *http.Request, stream string) {
	serveOffer(w, r, stream, h.auth, "whep", h.log, func(ctx context.Context, offer string) (resource, string, error) {
		v, answer, err := h.srv.Play(ctx, stream, offer)
		if err != nil {
			return nil, "", err
		}
		return v, answer, nil
	}, h.srv)
}

func (h *whepHandler) session(w http.ResponseWriter, r *http.Request, stream, id string) {
	v, ok := h.srv.Viewer(id)
	if !ok || v.Stream() != stream {
		// A DELETE after the playback ended (the stream ended, or the
		// viewer closed its PeerConnection first) is 200: idempotent.
		if r.Method == http.MethodDelete && h.srv.ViewerEnded(id, stream) {
			if authorize(w, r, h.auth, stream, "whep") {
				w.WriteHeader(http.StatusOK)
			}
			return
		}
		httpError(w, http.StatusNotFound, "session not found")
		return
	}
	if !authorize(w, r, h.auth, stream, "whep") {
		return
	}
	if r.Method == http.MethodDelete {
		v.Close()
		w.WriteHeader(http.StatusOK)
		return
	}
	serveTrickle(w, r, h.srv, stream, v.PatchICE)
}
