package ingest

import (
	"net/http"
)

type httpRequest = http.Request

func newMux(srv *Server, auth func(r *http.Request, stream string) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/whip/", http.StripPrefix("/whip/", NewWHIPHandler(srv, auth, quietLogger())))
	return mux
}
