package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/whipcast/whipcast/ingest"
)

// gatePlay wraps the /hls/ or /dash/ handler (prefix stripped) with the
// playback check. Every file is checked, not only playlists. Players do not
// carry the playlist's query string over to the URIs inside it (hls.js and
// dash.js do not), so when the token came in ?token= the playlists and
// MPDs are rewritten to carry it on each URI they name; a player that sends
// Authorization itself (ffplay -headers, native apps) is served unchanged.
func gatePlay(check func(r *http.Request, stream string) error, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		stream, file := p[:i], p[i+1:]
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		if err := check(r, stream); err != nil {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			code := http.StatusForbidden
			if errors.Is(err, ingest.ErrUnauthorized) {
				code = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", `Bearer realm="play"`)
			}
			http.Error(w, http.StatusText(code), code)
			return
		}
		tok := r.URL.Query().Get("token")
		if _, hasBearer := bearer(r); hasBearer || tok == "" {
			next.ServeHTTP(w, r)
			return
		}
		var rewrite func([]byte, string) []byte
		switch {
		case strings.HasSuffix(file, ".m3u8"):
			rewrite = rewriteM3U8
		case strings.HasSuffix(file, ".mpd"):
			rewrite = rewriteMPD
		default:
			next.ServeHTTP(w, r)
			return
		}
		bw := &bufferWriter{header: http.Header{}}
		next.ServeHTTP(bw, r)
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		body := bw.buf.Bytes()
		if bw.status == 0 || bw.status == http.StatusOK {
			body = rewrite(body, "token="+url.QueryEscape(tok))
			w.Header().Del("Content-Length")
			w.Header().Del("ETag")
		}
		if bw.status != 0 {
			w.WriteHeader(bw.status)
		}
		_, _ = w.Write(body)
	})
}

// bufferWriter holds a playlist response for rewriting. Playlists are
// small and written at once (a blocking reload waits before writing).
type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) WriteHeader(code int)        { b.status = code }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }

// addQuery appends q to a URI reference.
func addQuery(uri, q string) string {
	if uri == "" {
		return uri
	}
	if strings.Contains(uri, "?") {
		return uri + "&" + q
	}
	return uri + "?" + q
}

var m3u8URIAttr = regexp.MustCompile(`URI="([^"]*)"`)

// rewriteM3U8 adds q to every URI line and URI="…" attribute (EXT-X-MAP,
// -PART, -PRELOAD-HINT, -MEDIA, -RENDITION-REPORT) of an HLS playlist.
func rewriteM3U8(b []byte, q string) []byte {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		switch {
		case l == "":
		case strings.HasPrefix(l, "#"):
			lines[i] = m3u8URIAttr.ReplaceAllStringFunc(l, func(m string) string {
				return `URI="` + addQuery(m[5:len(m)-1], q) + `"`
			})
		default:
			lines[i] = addQuery(l, q)
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

var mpdURLAttr = regexp.MustCompile(`\b(media|initialization|sourceURL)="([^"]*)"`)

// rewriteMPD adds q to the SegmentTemplate URL templates of an MPD
// (ISO/IEC 23009-1 5.3.9.4; a template may carry a query). The XML
// attribute needs "&amp;" for a second parameter.
func rewriteMPD(b []byte, q string) []byte {
	q = strings.ReplaceAll(q, "&", "&amp;")
	return mpdURLAttr.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := mpdURLAttr.FindSubmatch(m)
		v := string(sub[2])
		sep := "?"
		if strings.Contains(v, "?") {
			sep = "&amp;"
		}
		return []byte(string(sub[1]) + `="` + v + sep + q + `"`)
	})
}
