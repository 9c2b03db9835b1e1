package ingest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func do(t *testing.T, method, url, ctype, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("%s %s: no CORS header", method, url)
	}
	return resp, string(b)
}

func TestWHIPHandler(t *testing.T) {
	checkNoLeaks(t)
	env := newTestEnv(t, Config{}, nil)
	const sdpType = "application/sdp"
	const fragType = "application/trickle-ice-sdpfrag"
	offer := crlf(testOffer)
	u := env.url("live/cam")

	// Refusals first: nothing may be left behind by any of them.
	refusals := []struct {
		name, method, url, ctype, body string
		want                           int
	}{
		{"wrong content type", "POST", u, "text/plain", offer, 415},
		{"too large", "POST", u, sdpType, strings.Repeat("a", 64<<10+1), 413},
		{"bad name", "POST", env.url("bad%20name"), sdpType, offer, 400},
		{"no H.264", "POST", u, sdpType, crlf(testOfferVP8Only), 400},
		{"no Opus", "POST", u, sdpType, crlf(testOfferNoOpus), 400},
		{"malformed", "POST", u, sdpType, "v=0\r\nnonsense", 400},
		{"GET", "GET", u, "", "", 405},
		{"PUT", "PUT", u, sdpType, offer, 405},
		{"DELETE without session", "DELETE", u, "", "", 405},
		{"PATCH unknown session", "PATCH", u + "?session=nope", fragType, crlf(testTrickle), 404},
		{"DELETE unknown session", "DELETE", u + "?session=nope", "", "", 404},
	}
	for _, tc := range refusals {
		resp, body := do(t, tc.method, tc.url, tc.ctype, tc.body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		if resp.StatusCode == 400 && (!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || strings.Count(strings.TrimSpace(body), "\n") != 0 || body == "") {
			t.Errorf("%s: reason not one line of text/plain: %q", tc.name, body)
		}
	}
	// ServeMux cleans paths before the handler sees them; call it directly
	// for names only a non-cleaning router would pass through.
	h := NewWHIPHandler(env.srv, nil, quietLogger())
	for _, name := range []string{"a//b", "//lead", "trail/", "a/../b", "x.y"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/whip/x", strings.NewReader(offer))
		req.URL.Path = name
		req.Header.Set("Content-Type", sdpType)
		h.ServeHTTP(rec, req)
		if rec.Code != 400 {
			t.Errorf("name %q: %d", name, rec.Code)
		}
	}
	env.waitEmpty(t)

	resp, _ := do(t, "OPTIONS", u, "", "")
	if resp.StatusCode != 204 ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PATCH") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "If-Match") ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}

	// A publish that never connects (the offer's peer does not exist).
	resp, answer := do(t, "POST", u, sdpType, offer)
	if resp.StatusCode != 201 {
		t.Fatalf("POST: %d %s", resp.StatusCode, answer)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/whip/live/cam?session=") || resp.Header.Get("Content-Type") != sdpType {
		t.Fatalf("Location %q, Content-Type %q", loc, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(answer, "H264/90000") || strings.Contains(answer, "VP8") || !strings.Contains(answer, "a=candidate:") {
		t.Errorf("answer must pick H.264 and carry candidates:\n%s", answer)
	}
	// The name is taken ("busy" below) but nothing is published before
	// the first frame: no consumer has started for a peer that may never
	// connect.
	if _, ok := env.reg.Get("live/cam"); ok {
		t.Fatal("the stream is public before any media")
	}
	sess := env.http.URL + loc
	etag := resp.Header.Get("ETag")
	restartFrag := strings.Replace(strings.Replace(crlf(testTrickle), "ice-ufrag:abcd", "ice-ufrag:efgh", 1),
		"ice-pwd:abcdefghijklmnopqrstuvwx", "ice-pwd:0123456789abcdefghijklmn", 1)

	steps := []struct {
		name, method, url, ctype, body string
		hdr                            []string
		want                           int
	}{
		{"busy", "POST", u, sdpType, offer, nil, 409},
		{"trickle", "PATCH", sess, fragType, crlf(testTrickle), nil, 204},
		{"trickle with If-Match", "PATCH", sess, fragType, "a=end-of-candidates\r\n", []string{"If-Match", etag}, 204},
		{"trickle stale If-Match", "PATCH", sess, fragType, crlf(testTrickle), []string{"If-Match", `"other"`}, 412},
		{"ICE restart with the old ufrag", "PATCH", sess, fragType, crlf(testTrickle), []string{"If-Match", "*"}, 400},
		{"ICE restart without a pwd", "PATCH", sess, fragType, "a=ice-ufrag:efgh\r\n", []string{"If-Match", "*"}, 400},
		{"ICE restart with a short pwd", "PATCH", sess, fragType, "a=ice-ufrag:efgh\r\na=ice-pwd:short\r\n", []string{"If-Match", "*"}, 400},
		{"ICE restart with a bad candidate", "PATCH", sess, fragType, strings.Replace(restartFrag, "typ host", "typ nonsense", 1), []string{"If-Match", "*"}, 400},
		{"refused restarts kept the ICE session", "PATCH", sess, fragType, "a=end-of-candidates\r\n", []string{"If-Match", etag}, 204},
		{"new ufrag without If-Match", "PATCH", sess, fragType, restartFrag, nil, 422},
		{"ICE restart wrong type", "PATCH", sess, sdpType, restartFrag, []string{"If-Match", "*"}, 415},
		{"trickle wrong type", "PATCH", sess, sdpType, crlf(testTrickle), nil, 415},
		{"trickle garbage", "PATCH", sess, fragType, "garbage", nil, 400},
		{"ICE restart", "PATCH", sess, fragType, restartFrag, []string{"If-Match", "*"}, 200},
		{"trickle with the ETag before the restart", "PATCH", sess, fragType, "a=end-of-candidates\r\n", []string{"If-Match", etag}, 412},
		{"trickle with the old ufrag", "PATCH", sess, fragType, crlf(testTrickle), nil, 422},
		{"trickle of the new ICE session", "PATCH", sess, fragType, restartFrag, nil, 204},
		{"session under another stream", "DELETE", env.url("live/other") + "?session=" + strings.SplitN(loc, "=", 2)[1], "", "", nil, 404},
		{"GET session", "GET", sess, "", "", nil, 405},
		{"POST to session", "POST", sess, sdpType, offer, nil, 405},
		{"DELETE", "DELETE", sess, "", "", nil, 200},
		{"DELETE again (ended: idempotent)", "DELETE", sess, "", "", nil, 200},
		{"PATCH after the end", "PATCH", sess, fragType, crlf(testTrickle), nil, 404},
	}
	for _, tc := range steps {
		resp, body := do(t, tc.method, tc.url, tc.ctype, tc.body, tc.hdr...)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		if tc.want == 200 && tc.method == "PATCH" {
			// RFC 9725 §4.3.2: the gateway's new credentials and
			// candidates, and a new ETag.
			if resp.Header.Get("Content-Type") != fragType || resp.Header.Get("ETag") == "" || resp.Header.Get("ETag") == etag {
				t.Errorf("%s: Content-Type %q, ETag %q (was %q)", tc.name, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), etag)
			}
			f, err := parseTrickle(body)
			if err != nil || f.iceUfrag == "" || f.icePwd == "" || len(f.candidates) != 1 || !strings.Contains(f.candidates[0].candidate, " 1 udp ") || !f.endOfCandidates ||
				strings.Contains(answer, "a=ice-ufrag:"+f.iceUfrag+"\r\n") || !strings.Contains(body, "a=mid:0\r\n") {
				t.Errorf("%s: fragment %v:\n%s", tc.name, err, body)
			}
		}
	}
	env.waitEmpty(t)
}

func TestWHIPAuth(t *testing.T) {
	checkNoLeaks(t)
	auth := func(r *http.Request, stream string) error {
		h := r.Header.Get("Authorization")
		if !strings.HasPrefix(h, "Bearer ") {
			return ErrUnauthorized
		}
		if h != "Bearer secret" || stream != "live/cam" {
			return ErrForbidden
		}
		return nil
	}
	env := newTestEnv(t, Config{}, auth)
	u := env.url("live/cam")
	offer := crlf(testOffer)
	for _, tc := range []struct {
		name string
		url  string
		hdr  []string
		want int
	}{
		{"missing", u, nil, 401},
		{"wrong token", u, []string{"Authorization", "Bearer nope"}, 403},
		{"wrong stream", env.url("live/other"), []string{"Authorization", "Bearer secret"}, 403},
	} {
		resp, _ := do(t, "POST", tc.url, "application/sdp", offer, tc.hdr...)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
	env.waitEmpty(t)
	resp, _ := do(t, "POST", u, "application/sdp", offer, "Authorization", "Bearer secret")
	if resp.StatusCode != 201 {
		t.Fatalf("POST with token: %d", resp.StatusCode)
	}
	sess := env.http.URL + resp.Header.Get("Location")
	if resp, _ := do(t, "DELETE", sess, "", ""); resp.StatusCode != 401 {
		t.Errorf("DELETE without token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "DELETE", sess, "", "", "Authorization", "Bearer secret"); resp.StatusCode != 200 {
		t.Errorf("DELETE with token: %d", resp.StatusCode)
	}
	env.waitEmpty(t)
}

// TestSessionEndsWithoutMedia: a publish whose peer never connects is ended
// by the ICE timeout and leaves nothing behind.
func TestSessionEndsWithoutMedia(t *testing.T) {
	checkNoLeaks(t)
	env := newTestEnv(t, Config{ICETimeout: 500 * time.Millisecond}, nil)
	sess, _, err := env.srv.Publish(t.Context(), "idle", crlf(testOffer))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sess.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still running")
	}
	env.waitEmpty(t)
}

// TestServerCloseEndsSessions: Close ends live sessions, is idempotent and
// refuses later publishes.
func TestServerCloseEndsSessions(t *testing.T) {
	checkNoLeaks(t)
	env := newTestEnv(t, Config{}, nil)
	if _, _, err := env.srv.Publish(t.Context(), "a", crlf(testOffer)); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Close(); err != nil {
		t.Fatal(err)
	}
	env.waitEmpty(t)
	if _, _, err := env.srv.Publish(t.Context(), "b", crlf(testOffer)); err == nil {
		t.Fatal("publish after Close")
	}
}

// TestPublicIPs: NAT 1:1 addresses are advertised as host candidates, on UDP
// and ICE-TCP with the same port.
func TestPublicIPs(t *testing.T) {
	checkNoLeaks(t)
	env := newTestEnv(t, Config{PublicIPs: []string{"203.0.113.7"}}, nil)
	sess, answer, err := env.srv.Publish(t.Context(), "nat", crlf(testOffer))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	udp, tcp := env.srv.Addr()
	port := strings.TrimPrefix(udp.String(), "127.0.0.1:")
	if tcp.String() != udp.String() {
		t.Errorf("TCP %v, UDP %v: not the same port", tcp, udp)
	}
	for _, want := range []string{"udp 2130706431 203.0.113.7 " + port + " typ host", "tcp", "203.0.113.7 " + port + " typ host tcptype passive"} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer lacks %q:\n%s", want, answer)
		}
	}
}
