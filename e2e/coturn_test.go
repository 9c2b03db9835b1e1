package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// coturn is Debian's TURN server started by a test on loopback with TURN
// REST authentication (use-auth-secret), the way docs/networks.md
// configures it.
type coturn struct {
	addr string
	mu   sync.Mutex
	log  strings.Builder
}

func (c *coturn) logText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// startCoturn runs turnserver on a free loopback UDP port. Without it the
// test is skipped, except under CI=true where it fails (`make test`
// installs the coturn package).
func startCoturn(t *testing.T, secret string) *coturn {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("turnserver is missing; `make test` (deps-test) installs the coturn package")
		}
		t.Skip("turnserver is missing: run `make deps-test` (Debian package coturn)")
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	dir := t.TempDir()
	c := &coturn{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-n", // no config file
		"--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", fmt.Sprint(port),
		"--use-auth-secret", "--static-auth-secret", secret, "--realm", "whipcast.test",
		"--no-tls", "--no-dtls", "--no-tcp", "--no-cli",
		// Both ends of every relayed path are on loopback here.
		"--allow-loopback-peers",
		"--pidfile", filepath.Join(dir, "turnserver.pid"), "--db", filepath.Join(dir, "turndb"),
		"--log-file", "stdout", "--simple-log", "--verbose")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			c.mu.Lock()
			c.log.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "UDP listener opened on: "+c.addr) {
				signalled = true
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
	})
	select {
	case <-ready:
	case <-done:
		t.Fatalf("turnserver exited:\n%s", c.logText())
	case <-time.After(15 * time.Second):
		t.Fatalf("turnserver did not open %s within 15 s:\n%s", c.addr, c.logText())
	}
	return c
}

// turnResult is what browser/turn.mjs prints.
type turnResult struct {
	Links   []string `json:"links"`
	Publish *struct {
		State, Local, Remote string
	} `json:"publish"`
	Play *struct {
		State, Local, Remote      string
		FramesBefore, FramesAfter int
	} `json:"play"`
	Answers  []string `json:"answers"`
	GatherMs []int    `json:"gatherMs"`
	Error    *string  `json:"error"`
}

// TestE2ECoturnBrowserRelay: Debian's coturn on loopback with a shared
// secret; the gateway names it in webrtc.ice_servers (time-limited REST
// credentials). Chromium reads the TURN server and credentials from the
// Link headers of OPTIONS and, with iceTransportPolicy "relay", publishes
// over WHIP and plays back over WHEP through it: the selected pairs use a
// relay candidate on the browser's end, frames are decoded, and coturn
// logged the allocations under the stream's time-limited usernames. Twice:
// with webrtc.ice_transport all (the gateway offers its host candidates
// and a relay one) and relay (the gateway offers only relay candidates, so
// the pair is relay on both ends).
func TestE2ECoturnBrowserRelay(t *testing.T) {
	for _, transport := range []string{"all", "relay"} {
		t.Run(transport, func(t *testing.T) { testCoturnBrowserRelay(t, transport) })
	}
}

func testCoturnBrowserRelay(t *testing.T, transport string) {
	node := needBrowser(t)
	checkNoLeaks(t)
	const secret, stream = "e2e-coturn-secret", "turn/cam"
	turn := startCoturn(t, secret)
	g := startGateway(t, fmt.Sprintf(`  ice_servers:
    - urls: ["turn:%s?transport=udp"]
      secret: %s
      ttl: 1h
  ice_transport: %s
`, turn.addr, secret, transport))
	base := "http://" + g.HTTPAddr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "turn.mjs", "--base", base, "--stream", stream, "--chromium", chromiumPath)
	cmd.Dir = "browser"
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r turnResult
	if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
		t.Fatalf("driver failed: %v %s", err, out)
	}
	defer func() {
		if t.Failed() {
			t.Logf("driver: %s\ncoturn log:\n%s", out, turn.logText())
		}
	}()
	if r.Error != nil {
		t.Fatalf("browser: %s", *r.Error)
	}
	if len(r.Links) != 2 {
		t.Fatalf("Link headers on WHIP and WHEP OPTIONS: %q", r.Links)
	}
	for _, l := range r.Links {
		m := reTURNLink.FindStringSubmatch(l)
		if m == nil || m[1] != turn.addr || m[3] != stream {
			t.Fatalf("TURN Link %q", l)
		}
	}
	wantRemote := "relay"
	for i, a := range r.Answers {
		host := strings.Contains(a, "typ host")
		if !strings.Contains(a, "typ relay") || host != (transport == "all") {
			t.Errorf("answer %d of the gateway with ice_transport %s:\n%s", i, transport, a)
		}
	}
	if transport == "all" {
		wantRemote = "" // host or relay: the browser's relay reaches either
	}
	check := func(what, state, local, remote string) {
		t.Helper()
		if state != "connected" || local != "relay" || (wantRemote != "" && remote != wantRemote) {
			t.Errorf("%s: %s on a %s-%s pair; want connected, relay on the browser's end, %q on the gateway's", what, state, local, remote, wantRemote)
		}
	}
	if r.Publish == nil || r.Play == nil {
		t.Fatalf("driver: %s", out)
	}
	check("WHIP publish", r.Publish.State, r.Publish.Local, r.Publish.Remote)
	check("WHEP playback", r.Play.State, r.Play.Local, r.Play.Remote)
	if r.Play.FramesBefore == 0 || r.Play.FramesAfter <= r.Play.FramesBefore {
		t.Errorf("WHEP playback decoded %d then %d video frames; want frames, still coming", r.Play.FramesBefore, r.Play.FramesAfter)
	}
	t.Logf("through coturn: publish %s-%s, play %s-%s, %d → %d video frames decoded over 3 s; gathering %v ms",
		r.Publish.Local, r.Publish.Remote, r.Play.Local, r.Play.Remote, r.Play.FramesBefore, r.Play.FramesAfter, r.GatherMs)
	// The browser's two relays and the gateway's two (its publisher and
	// viewer PeerConnections), each under a username "expiry:stream".
	if n := strings.Count(turn.logText(), ":"+stream+">: incoming packet ALLOCATE processed, success"); n < 4 {
		t.Errorf("coturn logged %d successful allocations for %s, want 4 (browser and gateway, WHIP and WHEP)", n, stream)
	}
}

// TestE2ECoturnPublishPage: the gateway's own /publish page takes its ICE
// servers from the Link headers of the WHIP OPTIONS answer, as a client of
// RFC 9725 §4.6 does. With ?relay=1 (TURN only) it can reach the gateway
// only through coturn with the time-limited credentials it was given, so
// a live publish on a relay candidate shows the page used them.
func TestE2ECoturnPublishPage(t *testing.T) {
	node := needBrowser(t)
	checkNoLeaks(t)
	const secret, stream = "e2e-coturn-secret", "turn/page"
	turn := startCoturn(t, secret)
	g := startGateway(t, fmt.Sprintf(`  ice_servers:
    - urls: ["turn:%s?transport=udp"]
      secret: %s
      ttl: 1h
`, turn.addr, secret))
	base := "http://" + g.HTTPAddr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "publish.mjs", "--base", base, "--stream", stream, "--seconds", "4",
		"--relay", "1", "--chromium", chromiumPath)
	cmd.Dir = "browser"
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r publishResult
	if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
		t.Fatalf("driver failed: %v %s", err, out)
	}
	if !r.Published || r.Error != "" {
		t.Fatalf("the page did not go live through TURN: %s\ncoturn log:\n%s", out, turn.logText())
	}
	if len(r.ICEServers) != 1 || r.ICEServers[0].URLs != "turn:"+turn.addr+"?transport=udp" ||
		!strings.HasSuffix(r.ICEServers[0].Username, ":"+stream) {
		t.Errorf("ICE servers the page read from OPTIONS: %+v; want the TURN server with a username for %s", r.ICEServers, stream)
	}
	if r.Pair == nil || r.Pair.Local != "relay" {
		t.Errorf("selected candidate pair %+v; want relay on the browser's end", r.Pair)
	}
	if n := strings.Count(turn.logText(), ":"+stream+">: incoming packet ALLOCATE processed, success"); n < 1 {
		t.Errorf("coturn logged no successful allocation for %s", stream)
	}
}
