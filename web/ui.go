package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// uiFiles are the web UI: plain HTML and JavaScript, no build step. The
// players in ui/vendor are copies of the npm packages pinned in
// e2e/browser/package.json (make ui-vendor).
//
//go:embed ui
var uiFiles embed.FS

// mountUI serves the dashboard at /, the publisher at /publish, the player
// at /watch and their assets under /ui/.
func mountUI(mux *http.ServeMux) {
	sub, _ := fs.Sub(uiFiles, "ui")
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := fs.ReadFile(sub, name)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			h := w.Header()
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			_, _ = w.Write(b)
		}
	}
	mux.HandleFunc("GET /{$}", page("index.html"))
	mux.HandleFunc("GET /publish", page("publish.html"))
	mux.HandleFunc("GET /watch", page("watch.html"))
	mux.HandleFunc("GET /room", page("room.html"))
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.FileServerFS(sub)))
}
