package ingest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/media"
)

// TestICERestartKeepsSession: a pion publisher restarts ICE twice in the
// middle of a publish (RFC 9725 §4.3.2). The gateway answers each with new
// credentials and a new ETag, a trickle under the old ETag is refused with
// 412, and the frames go on into the same stream from the same session: one
// publish, one stream, DTS monotonic across the restarts, video arriving
// after each.
func TestICERestartKeepsSession(t *testing.T) {
	checkNoLeaks(t)
	env := newTestEnv(t, Config{}, nil)

	var publishes atomic.Int32
	var mu sync.Mutex
	var video []*media.Frame
	var arrived []time.Time
	ended := make(chan error, 1)
	env.reg.OnPublish(func(s *media.Stream) {
		publishes.Add(1)
		r := s.Subscribe("test", 0)
		go func() {
			for {
				f, err := r.Read(context.Background())
				if err != nil {
					ended <- err
					return
				}
				if f.Track.Kind == media.KindVideo {
					mu.Lock()
					video = append(video, f)
					arrived = append(arrived, time.Now())
					mu.Unlock()
				}
			}
		}()
	})
	// framesSince counts the video frames that arrived after t.
	framesSince := func(at time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range arrived {
			if a.After(at) {
				n++
			}
		}
		return n
	}
	waitFrames := func(what string, at time.Time, n int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for framesSince(at) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d video frames in 15 s, want %d", what, framesSince(at), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	c, err := whipclient.Publish(ctx, env.url("live/roam"), "", "../testdata/av.h264", "../testdata/av.ogg",
		whipclient.Options{LoopbackOnly: true, Loop: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ids := env.srv.sessionIDs()
	if len(ids) != 1 {
		t.Fatalf("%d sessions", len(ids))
	}
	id := ids[0]
	waitFrames("before the restart", time.Time{}, 15)

	etags := []string{c.ETag()}
	for i := range 2 {
		at := time.Now()
		et, err := c.RestartICE(ctx)
		if err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		for _, old := range etags {
			if et == "" || et == old {
				t.Fatalf("restart %d: ETag %q, earlier ones %q", i+1, et, etags)
			}
		}
		// A trickle of the ICE session before: 412; of the new one: 204.
		stale, _ := do(t, "PATCH", c.Location(), "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", "If-Match", etags[len(etags)-1])
		fresh, _ := do(t, "PATCH", c.Location(), "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", "If-Match", et)
		if stale.StatusCode != 412 || fresh.StatusCode != 204 {
			t.Errorf("restart %d: trickle with the old ETag %d (want 412), with the new one %d (want 204)", i+1, stale.StatusCode, fresh.StatusCode)
		}
		etags = append(etags, et)
		answered := time.Since(at)
		waitFrames("after the restart", at, 1)
		t.Logf("restart %d: PATCH answered in %v, first video frame after it %v after the PATCH", i+1, answered.Round(time.Millisecond), time.Since(at).Round(time.Millisecond))
		waitFrames("after the restart", at, 30)
	}

	if sess, ok := env.srv.Session(id); !ok || sess.Err() != nil || env.srv.Sessions() != 1 {
		t.Fatalf("the session did not survive the restarts: %d sessions", env.srv.Sessions())
	}
	if n := publishes.Load(); n != 1 {
		t.Errorf("stream published %d times, want once", n)
	}
	select {
	case err := <-ended:
		t.Fatalf("the reader ended during the restarts: %v", err)
	default:
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, media.ErrStreamEnded) {
			t.Errorf("reader: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after DELETE")
	}
	env.waitEmpty(t)
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(video); i++ {
		if video[i].DTS <= video[i-1].DTS {
			t.Fatalf("DTS not monotonic at frame %d: %d then %d", i, video[i-1].DTS, video[i].DTS)
		}
		if video[i].Config != video[0].Config {
			t.Fatalf("frame %d: a new Config: the restart looked like a new stream", i)
		}
	}
	t.Logf("%d video frames over 2 ICE restarts; ETags %s", len(video), strings.Join(etags, " "))
}

// FuzzICERestartFragment: whatever a restart PATCH carries, either the
// credentials are refused with ErrBadTrickle, or the offer rebuilt with
// them parses, carries them in place of the old ones and no candidate: a
// fragment cannot inject SDP lines into the offer.
func FuzzICERestartFragment(f *testing.F) {
	f.Add("a=ice-ufrag:efgh\r\na=ice-pwd:0123456789abcdefghijklmn\r\n")
	f.Add("a=ice-ufrag:ef+/\r\na=ice-pwd:0123456789abcdefghijklmn\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n")
	f.Add("a=ice-ufrag:efgh\r\na=ice-pwd:0123456789abcdefghijklmn\r\na=candidate:x\r\n")
	f.Add("a=ice-ufrag:ef gh\r\na=ice-pwd:short\r\n")
	offer := crlf(testOffer)
	f.Fuzz(func(t *testing.T, frag string) {
		fr, err := parseTrickle(frag)
		if err != nil {
			return
		}
		if err := checkICECredentials(fr.iceUfrag, fr.icePwd); err != nil {
			if !errors.Is(err, ErrBadTrickle) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		out, err := restartOffer(offer, fr.iceUfrag, fr.icePwd)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkOffer(out); err != nil {
			t.Fatalf("rebuilt offer refused: %v\n%s", err, out)
		}
		if strings.Contains(out, "a=candidate:") || strings.Count(out, "a=ice-ufrag:"+fr.iceUfrag+"\r\n") != strings.Count(offer, "a=ice-ufrag:") ||
			strings.Count(out, "\r\n") != strings.Count(offer, "\r\n")-strings.Count(offer, "a=candidate:")-strings.Count(offer, "a=end-of-candidates") {
			t.Fatalf("rebuilt offer:\n%s", out)
		}
	})
}
