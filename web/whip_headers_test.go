package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/media"
)

// publishOffer is a sendonly H.264 + Opus offer from pion, with its
// candidates, as a WHIP client sends it.
func publishOffer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("offer: ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// TestWHIPHeadersThroughWeb: the ingest handlers mounted by NewHandler
// answer with the exact headers a browser WHIP/WHEP client on another
// origin needs, and a Location that is the absolute path with the prefix
// the client used.
func TestWHIPHeadersThroughWeb(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := media.NewRegistry()
	defer reg.Close()
	srv, err := ingest.NewServer(ingest.Config{ListenIP: "127.0.0.1", IncludeLoopback: true, Logger: log,
		ICEServers: []ingest.ICEServer{{URLs: []string{"stun:stun.example.net:3478", "stun:[2001:db8::1]"}}}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(NewHandler(Handlers{
		WHIP: ingest.NewWHIPHandler(srv, nil, log),
		WHEP: ingest.NewWHEPHandler(srv, nil, log),
	}, log))
	defer hs.Close()
	do := func(method, path, ctype, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Origin", "https://page.example")
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	cors := map[string]string{
		"Access-Control-Allow-Origin":   "*",
		"Access-Control-Allow-Methods":  "POST, PATCH, DELETE, OPTIONS",
		"Access-Control-Allow-Headers":  "Authorization, Content-Type, If-Match, ETag",
		"Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post, Allow, Access-Control-Allow-Methods",
	}
	links := []string{`<stun:stun.example.net:3478>; rel="ice-server"`, `<stun:[2001:db8::1]>; rel="ice-server"`}
	for _, ep := range []string{"/whip/live/a", "/whep/live/a"} {
		resp := do("OPTIONS", ep, "", "")
		want := map[string]string{"Allow": "POST, PATCH, DELETE, OPTIONS", "Accept-Post": "application/sdp",
			"Accept-Patch": "application/trickle-ice-sdpfrag"}
		for k, v := range cors {
			want[k] = v
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("OPTIONS %s: %s %q, want %q", ep, k, got, v)
			}
		}
		if resp.StatusCode != http.StatusNoContent || !slices.Equal(resp.Header.Values("Link"), links) {
			t.Errorf("OPTIONS %s: %d, Link %q", ep, resp.StatusCode, resp.Header.Values("Link"))
		}
	}

	resp := do("POST", "/whip/live/a", "application/sdp", publishOffer(t))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	id, ok := strings.CutPrefix(loc, "/whip/live/a?session=")
	if !ok || id == "" || resp.Header.Get("ETag") != `"`+id+`"` ||
		resp.Header.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" || !slices.Equal(resp.Header.Values("Link"), links) {
		t.Fatalf("201: %v", resp.Header)
	}
	for k, v := range cors {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("201: %s %q, want %q", k, got, v)
		}
	}
	for i, want := range []int{200, 200} {
		if resp := do("DELETE", loc, "", ""); resp.StatusCode != want || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("DELETE %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if resp := do("DELETE", "/whip/live/a?session=nope", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE of an unknown session: %d", resp.StatusCode)
	}
	if resp := do("DELETE", "/whep/live/a?session="+id, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("WHEP DELETE with a WHIP session id: %d", resp.StatusCode)
	}
}
