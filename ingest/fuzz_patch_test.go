package ingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
)

// FuzzWHIPPatch sends arbitrary PATCH requests (If-Match, Content-Type and
// an application/trickle-ice-sdpfrag body, RFC 8840) to a live WHIP
// session resource through the handler, as a client on the network can:
// every answer is a 2xx or a 4xx, never a 5xx or a panic. (The session may
// end: candidates that never answer make ICE fail, as they should; then
// the next input gets a new session.) WHEP's PATCH
// is the same code (serveTrickle, addTrickle). The server listens on
// 127.0.0.1 only, so candidates the fuzzer makes up are never reached.
func FuzzWHIPPatch(f *testing.F) {
	for _, s := range [][3]string{
		{`"ID"`, "application/trickle-ice-sdpfrag", crlf(testTrickle)},
		{"", "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n"},
		{"*", "application/trickle-ice-sdpfrag", "a=ice-ufrag:new1\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"},
		{`"stale"`, "application/trickle-ice-sdpfrag", crlf(testTrickle)},
		{"", "text/plain", "hello"},
		{"", "application/trickle-ice-sdpfrag", "a=candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype passive\r\na=mid:1\r\n"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	reg := media.NewRegistry()
	srv, err := NewServer(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, Logger: quietLogger(), ICETimeout: time.Hour}, reg)
	if err != nil {
		f.Fatal(err)
	}
	hs := httptest.NewServer(newMux(srv, nil))
	f.Cleanup(func() {
		hs.Close()
		_ = srv.Close()
		reg.Close()
	})
	var sess *Session
	f.Fuzz(func(t *testing.T, ifMatch, ctype, body string) {
		if sess == nil || sess.Err() != nil {
			if sess != nil {
				<-sess.Done()
			}
			var err error
			if sess, _, err = srv.Publish(t.Context(), "fuzz/patch", crlf(testOffer)); err != nil {
				t.Fatal(err)
			}
		}
		url := hs.URL + "/whip/fuzz/patch?session=" + sess.ID()
		req, err := http.NewRequest(http.MethodPatch, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ifMatch = strings.ReplaceAll(ifMatch, "ID", sess.ID()); ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		req.Header.Set("Content-Type", ctype)
		if req.Header.Get("If-Match") != ifMatch || req.Header.Get("Content-Type") != ctype {
			return // not a header a client could send
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			return // a header net/http itself refuses to send
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 || resp.StatusCode < 200 {
			t.Fatalf("If-Match %q, Content-Type %q, body %q: %d", ifMatch, ctype, body, resp.StatusCode)
		}
	})
}
