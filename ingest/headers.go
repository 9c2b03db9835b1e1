package ingest

import (
	"net/http"
	"time"

	"github.com/whipcast/whipcast/media"
)

// exposedHeaders are the response headers a browser WHIP/WHEP client on
// another origin must read: the session URL, the ETag for If-Match, the ICE
// servers, and what the resource accepts. Eyevinn's whip-web-client (1.1.x)
// decides whether to trickle from Access-Control-Allow-Methods on the OPTIONS
// answer, which a page on another origin reads only when it is exposed.
const exposedHeaders = "Location, ETag, Link, Accept-Patch, Accept-Post, Allow, Access-Control-Allow-Methods"

// allowedHeaders are the request headers a cross-origin client may send.
// ETag is not a request header in any RFC, but Eyevinn's whip-web-client
// (1.1.x) puts the session's entity-tag in one on every trickle PATCH; a
// preflight that refused it would fail each PATCH in the browser. The
// gateway ignores its value (a trickle needs no If-Match here).
const allowedHeaders = "Authorization, Content-Type, If-Match, ETag"

// trickleType is the PATCH body type (RFC 8840), announced in Accept-Patch.
const trickleType = "application/trickle-ice-sdpfrag"

// serveOptions answers OPTIONS on a WHIP or WHEP endpoint (RFC 9725 §4.6):
// 204 with what the endpoint accepts and, for a client the auth callback lets
// in, the ICE servers. A CORS preflight carries no Authorization, so where
// auth is on it gets no TURN credentials; clients that read the ICE servers
// from OPTIONS (simple-whip-client) send their token there too.
func serveOptions(w http.ResponseWriter, r *http.Request, s *Server, auth func(*http.Request, string) error, stream string) {
	h := w.Header()
	h.Set("Allow", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Accept-Post", "application/sdp")
	h.Set("Accept-Patch", trickleType)
	if media.ValidateName(stream) == nil && (auth == nil || auth(r, stream) == nil) {
		addLinks(h, s, stream)
	}
	w.WriteHeader(http.StatusNoContent)
}

// addLinks adds the Link rel="ice-server" headers for a session on stream.
func addLinks(h http.Header, s *Server, stream string) {
	for _, l := range iceLinks(s.iceServers, stream, time.Now()) {
		h.Add("Link", l)
	}
}

// createdHeaders are the headers of a 201 besides Location and ETag.
func createdHeaders(h http.Header, s *Server, stream string) {
	h.Set("Accept-Patch", trickleType)
	addLinks(h, s, stream)
}
