package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// lossyRelay stands between a browser and the gateway's UDP port, on
// another loopback address, and loses a fraction of the RTP packets going
// to the gateway (retransmissions too: they are RTP) after a random delay
// (jitter, which also reorders). STUN, DTLS and RTCP pass untouched, and so
// does everything coming back. It is the uplink of a phone on bad Wi-Fi for
// a sender we do not control (Chromium), which a pion interceptor in our
// own client cannot be.
type lossyRelay struct {
	ln       *net.UDPConn
	upstream *net.UDPAddr
	loss     float64
	jitter   time.Duration

	mu      sync.Mutex
	rnd     *rand.Rand
	peers   map[string]*net.UDPConn // browser address → our socket towards the gateway
	dropped int
	passed  int
	closed  bool
	wg      sync.WaitGroup
}

func startLossyRelay(t *testing.T, listen, upstream *net.UDPAddr, loss float64, jitter time.Duration, seed int64) *lossyRelay {
	t.Helper()
	ln, err := net.ListenUDP("udp", listen)
	if err != nil {
		t.Fatalf("lossy relay: %v", err)
	}
	r := &lossyRelay{ln: ln, upstream: upstream, loss: loss, jitter: jitter,
		rnd: rand.New(rand.NewSource(seed)), peers: map[string]*net.UDPConn{}}
	r.wg.Add(1)
	go r.run()
	t.Cleanup(r.close)
	return r
}

// isRTP tells RTP from RTCP, STUN and DTLS (RFC 7983 §7, RFC 5761 §4).
func isRTP(b []byte) bool {
	if len(b) < 12 || b[0]>>6 != 2 {
		return false
	}
	pt := b[1] & 0x7f
	return pt < 64 || pt > 95
}

func (r *lossyRelay) run() {
	defer r.wg.Done()
	buf := make([]byte, 1600)
	for {
		n, from, err := r.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		up := r.peer(from)
		if up == nil {
			return
		}
		pkt := append([]byte(nil), buf[:n]...)
		if !isRTP(pkt) {
			_, _ = up.Write(pkt)
			continue
		}
		r.mu.Lock()
		drop := r.rnd.Float64() < r.loss
		delay := time.Duration(r.rnd.Int63n(int64(r.jitter) + 1))
		if drop {
			r.dropped++
		} else {
			r.passed++
		}
		r.mu.Unlock()
		if !drop {
			time.AfterFunc(delay, func() { _, _ = up.Write(pkt) })
		}
	}
}

// peer returns the socket that carries from's packets to the gateway, made
// on first use with a goroutine that carries the gateway's answers back.
func (r *lossyRelay) peer(from *net.UDPAddr) *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	if c, ok := r.peers[from.String()]; ok {
		return c
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: r.upstream.IP}, r.upstream)
	if err != nil {
		return nil
	}
	r.peers[from.String()] = c
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 1600)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			_, _ = r.ln.WriteToUDP(buf[:n], from)
		}
	}()
	return c
}

func (r *lossyRelay) counts() (dropped, passed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped, r.passed
}

func (r *lossyRelay) close() {
	r.mu.Lock()
	r.closed = true
	for _, c := range r.peers {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
	time.Sleep(r.jitter) // the last delayed writes (to closed sockets)
}

// lossyResult is what browser/lossy.mjs prints.
type lossyResult struct {
	Published bool `json:"published"`
	Video     *struct {
		FramesEncoded            int `json:"framesEncoded"`
		FramesSent               int `json:"framesSent"`
		PacketsSent              int `json:"packetsSent"`
		RetransmittedPacketsSent int `json:"retransmittedPacketsSent"`
		NACKCount                int `json:"nackCount"`
		PLICount                 int `json:"pliCount"`
		FrameWidth               int `json:"frameWidth"`
		FrameHeight              int `json:"frameHeight"`
	} `json:"video"`
	Error string `json:"error"`
}

// TestE2EBrowserLossyUplink: Chromium (its own WebRTC stack: NACK answered
// with RTX, PLI answered, its congestion control) publishes through a relay
// that loses 10 % of its RTP with up to 30 ms of jitter. The recording and
// the HLS output keep at least 92 % of the frames Chromium sent (issue 11's
// floor at 10 %), and decode without an error.
func TestE2EBrowserLossyUplink(t *testing.T) {
	node := needBrowser(t)
	checkNoLeaks(t)
	dir := t.TempDir()
	// The gateway advertises 127.0.0.2 (where the relay listens, on the
	// gateway's own port number); it listens on 127.0.0.1.
	g := startGateway(t, fmt.Sprintf(`  public_ips: [127.0.0.2]
storage: {type: local, path: %s/rec, spool_dir: %s/spool}
streams:
  - match: "lossy"
    record: true
`, dir, dir))
	gw := g.WebRTCAddr().(*net.UDPAddr)
	relay := startLossyRelay(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: gw.Port}, gw, 0.10, 30*time.Millisecond, 7)
	base := "http://" + g.HTTPAddr().String()
	const stream = "lossy"

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "lossy.mjs", "--whip", base+"/whip/"+stream, "--seconds", "20", "--chromium", chromiumPath)
	cmd.Dir = "browser"
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var pub lossyResult
	if jerr := json.Unmarshal(out, &pub); err != nil || jerr != nil {
		t.Fatalf("lossy.mjs: %v %v %s", err, jerr, out)
	}
	dropped, passed := relay.counts()
	t.Logf("Chromium: %+v %+v; relay dropped %d of %d RTP packets", pub, pub.Video, dropped, dropped+passed)
	if !pub.Published || pub.Error != "" || pub.Video == nil {
		t.Fatalf("Chromium did not publish: %+v", pub)
	}
	// The relay did lose, and Chromium did repair: else this shows nothing.
	if frac := float64(dropped) / float64(dropped+passed); frac < 0.07 || pub.Video.NACKCount == 0 || pub.Video.RetransmittedPacketsSent == 0 {
		t.Fatalf("no loss and repair happened: %.1f %% dropped, %d NACKs, %d resent", 100*frac, pub.Video.NACKCount, pub.Video.RetransmittedPacketsSent)
	}

	sent := pub.Video.FramesSent
	minFrames := int(0.92 * float64(sent))
	mp4 := finishedRecordingMP4(t, filepath.Join(dir, "rec"))
	p := runProbe(t, mp4, true)
	_, _, frames, ok := p.stream("video")
	t.Logf("recording: %d of %d video frames Chromium sent (%.1f %%), %.3f s", frames, sent, 100*float64(frames)/float64(sent), p.duration())
	if !ok || frames < minFrames {
		t.Errorf("recording: %d video frames, want ≥ %d (92 %% of %d sent)", frames, minFrames, sent)
	}
	if e := ffmpegDecodeErrors(mp4); e != "" {
		t.Errorf("ffmpeg decode of the recording:\n%s", e)
	}
}
