package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whepclient"
	"github.com/whipcast/whipcast/internal/whipclient"
)

// TestE2EWHEP publishes over WHIP and watches over WHEP with a pion viewer:
// H.264 and Opus arrive as RTP, the first access unit is an IDR with its
// SPS/PPS, and the viewer's session ends when the publisher leaves. Also the
// refusals: unknown stream 404, bad SDP 400, no play token 401, a wrong one
// 403.
func TestE2EWHEP(t *testing.T) {
	checkNoLeaks(t)
	// The leading indent continues startGateway's webrtc: block. With a
	// 30 s keyframe interval the publisher is sent PLIs only on demand, so
	// the viewer's PLI can be seen arriving there.
	g := startGateway(t, "  keyframe_interval: 30s\naudio: {codec: opus}\nauth:\n  play_token: watch\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	popts := whipclient.Options{LoopbackOnly: true, Loop: 2, MaxDuration: 8 * time.Second}
	pub, err := whipclient.Publish(ctx, base+"/whip/show/main", "", fixtureVideo, fixtureAudio, popts)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	vopts := whepclient.Options{LoopbackOnly: true}
	status := func(err error) int {
		var se *whepclient.StatusError
		if errors.As(err, &se) {
			return se.Code
		}
		return 0
	}
	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"unknown stream", "/whep/show/nobody", "watch", http.StatusNotFound},
		{"no token", "/whep/show/main", "", http.StatusUnauthorized},
		{"wrong token", "/whep/show/main", "nope", http.StatusForbidden},
		{"bad name", "/whep/bad%20name", "watch", http.StatusBadRequest},
	} {
		c, err := whepclient.Play(ctx, base+tc.path, tc.token, vopts)
		if err == nil {
			c.Close()
			t.Fatalf("%s: playback accepted", tc.name)
		}
		if got := status(err); got != tc.want {
			t.Fatalf("%s: %v, want %d", tc.name, err, tc.want)
		}
	}
	// A body that is not SDP, and a preflight.
	req, _ := http.NewRequest(http.MethodPost, base+"/whep/show/main?token=watch", strings.NewReader("hello"))
	req.Header.Set("Content-Type", "application/sdp")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad SDP: %v %v, want 400", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	req, _ = http.NewRequest(http.MethodOptions, base+"/whep/show/main", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("OPTIONS: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	start := time.Now()
	v, err := whepclient.Play(ctx, base+"/whep/show/main", "watch", vopts)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if !strings.HasPrefix(v.Location(), base+"/whep/show/main?session=") && !strings.HasPrefix(v.Location(), "/whep/show/main?session=") {
		t.Errorf("Location %q", v.Location())
	}
	waitFor(t, 10*time.Second, "60 video frames and 100 Opus packets over WHEP", func() bool {
		s := v.Stats()
		return s.VideoFrames >= 60 && s.AudioPackets >= 100
	})
	s := v.Stats()
	t.Logf("WHEP: first frame %v after POST; %d frames (%d keyframes), %d Opus packets; %s + %s",
		s.FirstVideo.Sub(start).Round(time.Millisecond), s.VideoFrames, s.Keyframes, s.AudioPackets, s.VideoCodec, s.AudioCodec)
	if !s.FirstVideoKeyframe || !s.FirstVideoHasSPS {
		t.Errorf("first access unit: keyframe %v, SPS %v; want an IDR with SPS/PPS", s.FirstVideoKeyframe, s.FirstVideoHasSPS)
	}
	if !strings.EqualFold(s.VideoCodec, "video/H264") || !strings.EqualFold(s.AudioCodec, "audio/opus") {
		t.Errorf("codecs %s, %s", s.VideoCodec, s.AudioCodec)
	}
	// The viewer's PLIs reach the publisher, at most one a second.
	time.Sleep(1100 * time.Millisecond) // past the PLI of the viewer's subscribe
	before := pub.Stats().PLIs
	for range 5 {
		if err := v.RequestKeyframe(); err != nil {
			t.Fatalf("PLI: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, 15*time.Second, "the viewer's PLI at the publisher", func() bool { return pub.Stats().PLIs > before })
	time.Sleep(300 * time.Millisecond)
	if n := pub.Stats().PLIs - before; n > 1 {
		t.Errorf("5 PLIs in 100 ms from one viewer became %d at the publisher, want 1", n)
	}

	// The publisher leaves: the viewer's session ends with the stream.
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("the WHEP session outlived its stream")
	}
}
