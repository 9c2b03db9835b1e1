package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/media"
)

// startTURN runs pion's TURN server on a loopback UDP port with TURN REST
// (shared secret) authentication — an implementation independent of ours —
// and returns its address and the usernames it let in.
func startTURN(t *testing.T, secret string) (addr string, users func() []string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ok []string
	check := turn.LongTermTURNRESTAuthHandler(secret, nil)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: "whipcast.test",
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			user, key, good := check(ra)
			if good {
				mu.Lock()
				if !slices.Contains(ok, ra.Username) {
					ok = append(ok, ra.Username)
				}
				mu.Unlock()
			}
			return user, key, good
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.ParseIP("127.0.0.1"), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return pc.LocalAddr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ok)
	}
}

var reTURNLink = regexp.MustCompile(`^<turn:([^>]+)\?transport=udp>; rel="ice-server"; username="(\d+):([^"]+)"; credential="([^"]+)"; credential-type="password"$`)

// checkLinks asserts the two Link headers of the gateway below: the STUN
// URL bare, the TURN one with REST credentials for stream valid for ttl.
func checkLinks(t *testing.T, what string, h http.Header, turnAddr, secret, stream string, ttl time.Duration) {
	t.Helper()
	links := h.Values("Link")
	if len(links) != 2 || links[0] != `<stun:`+turnAddr+`>; rel="ice-server"` {
		t.Fatalf("%s: Link %q", what, links)
	}
	m := reTURNLink.FindStringSubmatch(links[1])
	if m == nil || m[1] != turnAddr || m[3] != stream {
		t.Fatalf("%s: TURN Link %q", what, links[1])
	}
	exp, _ := strconv.ParseInt(m[2], 10, 64)
	if left := time.Until(time.Unix(exp, 0)); left < ttl-time.Minute || left > ttl+time.Minute {
		t.Errorf("%s: credentials expire in %s, want %s", what, left, ttl)
	}
	if _, cred := ingest.TURNRESTCredentials(secret, stream, time.Unix(exp, 0)); cred != m[4] {
		t.Errorf("%s: credential %q, want %q", what, m[4], cred)
	}
}

// TestE2EWHIPHeadersTURNDeleteAfterClose: the real gateway with
// webrtc.ice_servers (a STUN URL and a TURN server with a shared secret):
// OPTIONS and 201 carry the Link ice-server headers, Accept-Patch and the
// CORS exposure a browser client needs; the gateway's own ICE agent gets a
// relay candidate from the TURN server, which accepts our REST credentials;
// the publisher closes its PeerConnection without DELETE (whip-whep's
// stop() order), and the DELETE that follows is 200, twice, while an
// unknown session is 404; a DELETE of the old session after a new publish
// resumed the stream leaves the new one running.
func TestE2EWHIPHeadersTURNDeleteAfterClose(t *testing.T) {
	checkNoLeaks(t)
	const secret, stream, ttl = "e2e-turn-secret", "hdr/cam", time.Hour
	turnAddr, turnUsers := startTURN(t, secret)
	g := startGateway(t, fmt.Sprintf(`  reconnect_window: %s
  ice_servers:
    - urls: ["stun:%s"]
    - urls: ["turn:%s?transport=udp"]
      secret: %s
      ttl: %s
`, reconnectWindow, turnAddr, turnAddr, secret, ttl))
	base := "http://" + g.HTTPAddr().String()
	endpoint := base + "/whip/" + stream
	ev := dialEvents(t, context.Background(), base)

	do := func(method, url string, body io.Reader, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "http://page.example")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	checkCommon := func(what string, h http.Header) {
		t.Helper()
		if h.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" || h.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %v", what, h)
		}
		expose := strings.Split(h.Get("Access-Control-Expose-Headers"), ", ")
		for _, want := range []string{"Location", "ETag", "Link", "Accept-Patch", "Accept-Post"} {
			if !slices.Contains(expose, want) {
				t.Errorf("%s: Access-Control-Expose-Headers %q lacks %s", what, expose, want)
			}
		}
	}

	resp, _ := do("OPTIONS", endpoint, nil, "Access-Control-Request-Method", "POST")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Accept-Post") != "application/sdp" {
		t.Fatalf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}
	checkCommon("OPTIONS", resp.Header)
	checkLinks(t, "OPTIONS", resp.Header, turnAddr, secret, stream, ttl)
	for _, ep := range []string{"/whep/" + stream} {
		resp, _ := do("OPTIONS", base+ep, nil)
		checkCommon("WHEP OPTIONS", resp.Header)
		checkLinks(t, "WHEP OPTIONS", resp.Header, turnAddr, secret, stream, ttl)
	}

	// Publish, signalling ourselves to see the 201; the client then closes
	// its PeerConnection without a DELETE.
	var created http.Header
	var answer string
	pub, err := whipclient.Publish(context.Background(), "", "", fixtureVideo, fixtureAudio, whipclient.Options{
		LoopbackOnly: true, MaxDuration: 3 * time.Second,
		Signal: func(ctx context.Context, offer string) (string, error) {
			resp, body := do("POST", endpoint, strings.NewReader(offer), "Content-Type", "application/sdp")
			if resp.StatusCode != http.StatusCreated {
				return "", fmt.Errorf("POST: %d %s", resp.StatusCode, body)
			}
			created, answer = resp.Header, body
			return body, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	loc := created.Get("Location")
	if !strings.HasPrefix(loc, "/whip/"+stream+"?session=") || created.Get("ETag") == "" {
		t.Fatalf("201: Location %q ETag %q", loc, created.Get("ETag"))
	}
	checkCommon("201", created)
	checkLinks(t, "201", created, turnAddr, secret, stream, ttl)
	if !strings.Contains(answer, "typ relay") {
		t.Errorf("the gateway gathered no relay candidate through the TURN server:\n%s", answer)
	}
	if users := turnUsers(); len(users) == 0 || !strings.HasSuffix(users[0], ":"+stream) {
		t.Errorf("the TURN server let in %q, want our time-limited username", users)
	}
	ev.expect("stream.started")
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil { // no DELETE: Signal mode
		t.Fatal(err)
	}
	ev.expect("stream.interrupted")
	for i := range 2 {
		if resp, body := do("DELETE", base+loc, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("DELETE %d after the PeerConnection closed: %d %q", i+1, resp.StatusCode, body)
		}
	}
	if resp, _ := do("DELETE", endpoint+"?session=0123456789abcdef01234567", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE of an unknown session: %d, want 404", resp.StatusCode)
	}

	// A new publish resumes the held stream; the old session's DELETE must
	// not end it: its frames keep coming until it stops by itself.
	pub2 := publish(t, g, stream, whipclient.Options{MaxDuration: 4 * time.Second})
	ev.expect("stream.resumed")
	st, ok := g.Registry.Get(stream)
	if !ok {
		t.Fatal("stream gone")
	}
	var video atomic.Int64
	r := st.Subscribe("e2e-count", 4096)
	ctx, cancel := context.WithCancel(context.Background())
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		defer r.Close()
		for {
			f, err := r.Read(ctx)
			if err != nil {
				return
			}
			if f.Track.Kind == media.KindVideo {
				video.Add(1)
			}
		}
	}()
	if resp, _ := do("DELETE", base+loc, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE of the old session after the resume: %d", resp.StatusCode)
	}
	atDelete := video.Load()
	if _, err := pub2.Wait(); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-counted
	after := video.Load() - atDelete
	t.Logf("video frames of the resumed publish after the old session's DELETE: %d", after)
	if after < 30 {
		t.Errorf("only %d video frames after the old session's DELETE: it ended the resumed publish", after)
	}
	if err := pub2.Close(); err != nil {
		t.Errorf("closing the resumed publish (DELETE): %v", err)
	}
	ev.expect("stream.interrupted")
}
