package ingest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/whipcast/whipcast/media"
)

// TestTURNRESTCredentials checks the credential against a vector made by
// openssl: printf '1700000000:live/cam' | openssl dgst -sha1 -hmac s3cret -binary | base64.
func TestTURNRESTCredentials(t *testing.T) {
	user, cred := TURNRESTCredentials("s3cret", "live/cam", time.Unix(1700000000, 0))
	if user != "1700000000:live/cam" || cred != "YRfYD9X4OTqNx49NDr66ra7ha0o=" {
		t.Fatalf("got %q %q", user, cred)
	}
	// The TTL counts from now; the default is 24 h.
	now := time.Unix(1700000000, 0)
	u, _ := ICEServer{Secret: "x"}.credentials("s", now)
	if u != "1700086400:s" {
		t.Errorf("default TTL: username %q", u)
	}
	u, _ = ICEServer{Secret: "x", TTL: time.Hour}.credentials("s", now)
	if u != "1700003600:s" {
		t.Errorf("TTL 1h: username %q", u)
	}
}

func TestICELinks(t *testing.T) {
	now := time.Unix(1700000000, 0)
	servers := []ICEServer{
		{URLs: []string{"stun:stun.example.net"}},
		{URLs: []string{"turn:turn.example.net?transport=udp", "turns:turn.example.net:5349"}, Username: "user", Credential: `my"Pass\word`},
		{URLs: []string{"turn:127.0.0.1:3478"}, Secret: "s3cret", TTL: -1}, // TTL ≤ 0: the default
	}
	got := iceLinks(servers, "live/cam", now.Add(-24*time.Hour))
	want := []string{
		`<stun:stun.example.net>; rel="ice-server"`,
		`<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="my\"Pass\\word"; credential-type="password"`,
		`<turns:turn.example.net:5349>; rel="ice-server"; username="user"; credential="my\"Pass\\word"; credential-type="password"`,
		`<turn:127.0.0.1:3478>; rel="ice-server"; username="1700000000:live/cam"; credential="YRfYD9X4OTqNx49NDr66ra7ha0o="; credential-type="password"`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("links:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The gateway's own agent gets the TURN URLs only, with the same credentials.
	own := pionICEServers(servers, "live/cam", now.Add(-24*time.Hour))
	if len(own) != 2 || !slices.Equal(own[0].URLs, servers[1].URLs) || own[1].Username != "1700000000:live/cam" ||
		own[1].Credential != "YRfYD9X4OTqNx49NDr66ra7ha0o=" {
		t.Errorf("pion servers: %+v", own)
	}
}

// firstMedia stands in for a peer's first frame in tests whose offer has no
// real peer: the session writes one Opus frame, which publishes its stream
// (media.Registry.Announce) as real media would.
func firstMedia(sess *Session) {
	sess.write(&media.Frame{Track: sess.stream.Tracks[trackAudio], Keyframe: true, Data: []byte{0xf8, 0xff, 0xfe}, Time: time.Now()})
}

// newHeaderEnv is newTestEnv with ICE servers, a reconnect window and the
// WHEP handler mounted too.
func newHeaderEnv(t *testing.T, window time.Duration, auth func(*http.Request, string) error) *testEnv {
	t.Helper()
	reg := media.NewRegistryWith(media.RegistrySettings{ReconnectWindow: window})
	srv, err := NewServer(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, Logger: quietLogger(), ICEServers: []ICEServer{
		{URLs: []string{"stun:stun.example.net:3478"}},
		{URLs: []string{"turn:127.0.0.1:9?transport=udp"}, Username: "u", Credential: "p"},
	}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/whip/", http.StripPrefix("/whip/", NewWHIPHandler(srv, auth, quietLogger())))
	mux.Handle("/whep/", http.StripPrefix("/whep/", NewWHEPHandler(srv, auth, quietLogger())))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		_ = srv.Close()
		reg.Close()
	})
	return &testEnv{reg: reg, srv: srv, http: hs}
}

var wantLinks = []string{
	`<stun:stun.example.net:3478>; rel="ice-server"`,
	`<turn:127.0.0.1:9?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`,
}

// TestWHIPHeaders: OPTIONS and 201 say what a WHIP/WHEP client needs (RFC
// 9725 §4.6: Link ice-server; Accept-Patch; CORS exposing them), on both
// endpoints. The TURN server does not exist: the answer must not wait for it
// beyond relayGatherWait, nor fail.
func TestWHIPHeaders(t *testing.T) {
	checkNoLeaks(t)
	env := newHeaderEnv(t, 0, nil)
	for _, ep := range []string{"/whip/", "/whep/"} {
		resp, _ := do(t, "OPTIONS", env.http.URL+ep+"live/cam", "", "")
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" || h.Get("Accept-Post") != "application/sdp" ||
			!slices.Equal(h.Values("Link"), wantLinks) {
			t.Errorf("OPTIONS %s: %d %v", ep, resp.StatusCode, h)
		}
		expose := strings.Split(h.Get("Access-Control-Expose-Headers"), ", ")
		for _, want := range []string{"Location", "ETag", "Link", "Accept-Patch", "Accept-Post"} {
			if !slices.Contains(expose, want) {
				t.Errorf("OPTIONS %s: Access-Control-Expose-Headers %q lacks %s", ep, expose, want)
			}
		}
	}
	resp, answer := do(t, "POST", env.url("live/cam"), "application/sdp", crlf(testOffer))
	if resp.StatusCode != 201 {
		t.Fatalf("POST: %d %s", resp.StatusCode, answer)
	}
	h := resp.Header
	if !strings.HasPrefix(h.Get("Location"), "/whip/live/cam?session=") || h.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" ||
		!slices.Equal(h.Values("Link"), wantLinks) || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "Accept-Patch") {
		t.Errorf("201: %v", h)
	}
	if !strings.Contains(answer, "typ host") {
		t.Errorf("answer has no host candidate:\n%s", answer)
	}
	env.srv.Close()
}

// TestOptionsLinksNeedAuth: with auth on, OPTIONS hands out the ICE servers
// (TURN credentials) only to a request the auth callback lets in; a CORS
// preflight (no Authorization) still gets its 204.
func TestOptionsLinksNeedAuth(t *testing.T) {
	auth := func(r *http.Request, _ string) error {
		if r.Header.Get("Authorization") != "Bearer ok" {
			return ErrUnauthorized
		}
		return nil
	}
	env := newHeaderEnv(t, 0, auth)
	resp, _ := do(t, "OPTIONS", env.url("live/cam"), "", "")
	if resp.StatusCode != 204 || len(resp.Header.Values("Link")) != 0 || resp.Header.Get("Accept-Patch") == "" {
		t.Errorf("OPTIONS without token: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "OPTIONS", env.url("live/cam"), "", "", "Authorization", "Bearer ok")
	if resp.StatusCode != 204 || !slices.Equal(resp.Header.Values("Link"), wantLinks) {
		t.Errorf("OPTIONS with token: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestDeleteEndedSession: a DELETE after the session ended (the peer closed
// first) is 200 however often it comes, and ends nothing: the publish that
// resumed the held stream in the reconnect window keeps running. An id that
// never existed, or one under another stream, is still 404.
func TestDeleteEndedSession(t *testing.T) {
	checkNoLeaks(t)
	env := newHeaderEnv(t, time.Minute, nil)
	post := func() string {
		t.Helper()
		resp, body := do(t, "POST", env.url("live/cam"), "application/sdp", crlf(testOffer))
		if resp.StatusCode != 201 {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		return resp.Header.Get("Location")
	}
	first := post()
	id := strings.SplitN(first, "=", 2)[1]
	old, ok := env.srv.Session(id)
	if !ok {
		t.Fatal("no session")
	}
	firstMedia(old)
	old.end(errTestPeerGone) // as a closed PeerConnection does
	<-old.Done()
	if _, held := env.reg.Get("live/cam"); !held {
		t.Fatal("the stream is not held in the reconnect window")
	}
	second := post() // resumes the held stream
	for range 2 {
		if resp, body := do(t, "DELETE", env.http.URL+first, "", ""); resp.StatusCode != 200 {
			t.Errorf("DELETE of the ended session: %d %q", resp.StatusCode, body)
		}
	}
	for _, u := range []string{env.url("live/cam") + "?session=nope", env.url("live/other") + "?session=" + id} {
		if resp, _ := do(t, "DELETE", u, "", ""); resp.StatusCode != 404 {
			t.Errorf("DELETE %s: %d, want 404", u, resp.StatusCode)
		}
	}
	if resp, _ := do(t, "PATCH", env.http.URL+first, "application/trickle-ice-sdpfrag", crlf(testTrickle)); resp.StatusCode != 404 {
		t.Errorf("PATCH of the ended session: %d, want 404", resp.StatusCode)
	}
	live, ok := env.srv.Session(strings.SplitN(second, "=", 2)[1])
	if !ok || live.Err() != nil || env.srv.Sessions() != 1 {
		t.Fatalf("the resumed publish was ended by the old session's DELETE")
	}
	if resp, _ := do(t, "DELETE", env.http.URL+second, "", ""); resp.StatusCode != 200 {
		t.Errorf("DELETE of the live session: %d", resp.StatusCode)
	}
	if env.srv.Sessions() != 0 {
		t.Errorf("%d sessions left", env.srv.Sessions())
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errTestPeerGone = testErr("ingest: connection closed by peer")

func TestEndedIDsBounded(t *testing.T) {
	var e endedIDs
	now := time.Unix(1700000000, 0)
	for i := range endedMemory + 10 {
		e.add(string(rune('a'+i%26))+strings.Repeat("x", i/26), "s", now)
	}
	if len(e.byID) != endedMemory || len(e.ring) != endedMemory {
		t.Fatalf("%d ids, %d ring slots, want %d", len(e.byID), len(e.ring), endedMemory)
	}
	if e.has("a", "s", now) {
		t.Error("the oldest id is still remembered")
	}
	last := string(rune('a'+(endedMemory+9)%26)) + strings.Repeat("x", (endedMemory+9)/26)
	if !e.has(last, "s", now) || e.has(last, "other", now) || e.has(last, "s", now.Add(endedFor)) {
		t.Error("newest id: wrong answers")
	}
}

// TestPublicIPsReplace: with public IPs set and the media port on every
// address, the answer's host candidates are exactly the public IPs (UDP and
// ICE-TCP), none of the machine's own addresses (fd00::2, 10.x).
func TestPublicIPsReplace(t *testing.T) {
	have6 := false
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err == nil {
		c.Close()
		have6 = true
	}
	cases := [][]string{{"203.0.113.7"}, {"127.0.0.1"}}
	if have6 {
		cases = append(cases, []string{"2001:db8::7"}, []string{"203.0.113.7", "2001:db8::7"})
	}
	for _, ips := range cases {
		t.Run(strings.Join(ips, ","), func(t *testing.T) {
			checkNoLeaks(t)
			reg := media.NewRegistry()
			defer reg.Close()
			srv, err := NewServer(Config{PublicIPs: ips, IncludeLoopback: true, Logger: quietLogger()}, reg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			sess, answer, err := srv.Publish(context.Background(), "live/nat", crlf(testOffer))
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			var sd sdp.SessionDescription
			if err := sd.UnmarshalString(answer); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, md := range sd.MediaDescriptions {
				for _, a := range md.Attributes {
					if a.Key != "candidate" {
						continue
					}
					f := strings.Fields(a.Value)
					if len(f) < 8 {
						t.Fatalf("candidate %q", a.Value)
					}
					if !slices.Contains(ips, f[4]) {
						t.Errorf("candidate advertises %s, not one of %v: %s", f[4], ips, a.Value)
					}
					seen[strings.ToLower(f[2])+" "+f[4]] = true
				}
			}
			for _, ip := range ips {
				for _, proto := range []string{"udp", "tcp"} {
					if !seen[proto+" "+ip] {
						t.Errorf("no %s candidate for %s; seen %v", proto, ip, seen)
					}
				}
			}
		})
	}
}

// TestWHEPDeleteAfterStreamEnded: a viewer's DELETE after the stream ended
// (its playback ended with it) is 200, idempotent; the 201 of WHEP carries
// the same headers as WHIP's, and so does an ICE restart's 200.
func TestWHEPDeleteAfterStreamEnded(t *testing.T) {
	checkNoLeaks(t)
	env := newHeaderEnv(t, 0, nil)
	pub, _, err := env.srv.Publish(context.Background(), "live/cam", crlf(testOffer))
	if err != nil {
		t.Fatal(err)
	}
	firstMedia(pub)
	whep := env.http.URL + "/whep/live/cam"
	resp, answer := do(t, "POST", whep, "application/sdp", crlf(strings.ReplaceAll(testOffer, "a=sendonly", "a=recvonly")))
	if resp.StatusCode != 201 {
		t.Fatalf("WHEP POST: %d %s", resp.StatusCode, answer)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/whep/live/cam?session=") || resp.Header.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" ||
		!slices.Equal(resp.Header.Values("Link"), wantLinks) {
		t.Fatalf("WHEP 201: %v", resp.Header)
	}
	// An ICE restart of the viewer: 200 with a new ETag and the Link
	// headers again (fresh TURN credentials, RFC 9725 §4.3.2); the old ETag
	// is stale after it.
	old := resp.Header.Get("ETag")
	restart := "a=ice-ufrag:wxyz\r\na=ice-pwd:0123456789abcdefghijklmn\r\n"
	resp, frag := do(t, "PATCH", env.http.URL+loc, "application/trickle-ice-sdpfrag", restart, "If-Match", "*")
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == old || !slices.Equal(resp.Header.Values("Link"), wantLinks) ||
		!strings.Contains(frag, "a=ice-pwd:") || strings.Contains(answer, frag[:strings.Index(frag, "\r\n")]) {
		t.Fatalf("WHEP ICE restart: %d %v\n%s", resp.StatusCode, resp.Header, frag)
	}
	if resp, _ := do(t, "PATCH", env.http.URL+loc, "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", "If-Match", old); resp.StatusCode != 412 {
		t.Errorf("WHEP trickle with the ETag before the restart: %d, want 412", resp.StatusCode)
	}
	if !env.srv.CloseStream("live/cam") {
		t.Fatal("no publish to close")
	}
	deadline := time.Now().Add(10 * time.Second)
	for env.srv.Viewers() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the viewer did not end with the stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 2 {
		if resp, body := do(t, "DELETE", env.http.URL+loc, "", ""); resp.StatusCode != 200 {
			t.Errorf("WHEP DELETE after the stream ended: %d %q", resp.StatusCode, body)
		}
	}
	if resp, _ := do(t, "DELETE", whep+"?session=nope", "", ""); resp.StatusCode != 404 {
		t.Errorf("WHEP DELETE of an unknown session: %d", resp.StatusCode)
	}
	// A WHIP DELETE with the viewer's id is not a publish that ended.
	if resp, _ := do(t, "DELETE", env.url("live/cam")+"?session="+strings.SplitN(loc, "=", 2)[1], "", ""); resp.StatusCode != 404 {
		t.Errorf("WHIP DELETE with a WHEP session id: %d", resp.StatusCode)
	}
}
