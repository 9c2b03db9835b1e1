package whipclient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The happy path runs against the real server in ingest's end-to-end test;
// these are the refusals, which must leave no PeerConnection behind.
func TestPublishRefused(t *testing.T) {
	var gotAuth, gotType, gotOffer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		gotType = r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		gotOffer = string(b)
		http.Error(w, "stream already has a publisher", http.StatusConflict)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Publish(ctx, srv.URL+"/whip/x", "tok", "../../testdata/av.h264", "../../testdata/av.ogg", Options{LoopbackOnly: true})
	if err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("err %v", err)
	}
	if gotAuth != "Bearer tok" || gotType != "application/sdp" {
		t.Errorf("auth %q type %q", gotAuth, gotType)
	}
	// The offer lists VP8 before H.264, like Chromium's.
	vp8, h264 := strings.Index(gotOffer, "VP8/90000"), strings.Index(gotOffer, "H264/90000")
	if vp8 < 0 || h264 < 0 || vp8 > h264 || !strings.Contains(gotOffer, "opus/48000/2") {
		t.Errorf("offer codecs: vp8 at %d, h264 at %d", vp8, h264)
	}
}

func TestPublishMissingFile(t *testing.T) {
	_, err := Publish(context.Background(), "http://127.0.0.1:1/whip/x", "", "nope.h264", "../../testdata/av.ogg", Options{})
	if err == nil {
		t.Fatal("no error for a missing file")
	}
}
