package whipclient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
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

// TestReceiverReportLoss folds receiver reports from the wire into the loss
// counters: cumulative lost is signed 24-bit (RFC 3550 §6.4.1), so a
// receiver that saw duplicates reports a negative count, not 16 million.
func TestReceiverReportLoss(t *testing.T) {
	for _, tc := range []struct {
		in   uint32
		want int
	}{
		{0, 0}, {1, 1}, {0x7FFFFF, 8388607}, {0xFFFFFF, -1}, {0xFFFFFE, -2}, {0x800000, -8388608},
	} {
		if got := cumulativeLost(tc.in); got != tc.want {
			t.Errorf("cumulativeLost(%#x) = %d, want %d", tc.in, got, tc.want)
		}
	}
	wire := func(blocks ...rtcp.ReceptionReport) *rtcp.ReceiverReport {
		b, err := (&rtcp.ReceiverReport{SSRC: 9, Reports: blocks}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var rr rtcp.ReceiverReport
		if err := rr.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		return &rr
	}
	var c Client
	// Video lost 5, then 7 (latest wins); audio saw two duplicates: −2.
	c.receiverReport(wire(rtcp.ReceptionReport{SSRC: 1, TotalLost: 5, FractionLost: 64}))
	c.receiverReport(wire(rtcp.ReceptionReport{SSRC: 1, TotalLost: 7}, rtcp.ReceptionReport{SSRC: 2, TotalLost: 0xFFFFFE}))
	st := c.stats
	if st.Lost != 5 || st.ReceiverReports != 3 || st.MaxFractionLost != 0.25 {
		t.Fatalf("lost %d (want 7−2 = 5), blocks %d (want 3), max fraction %v (want 0.25)", st.Lost, st.ReceiverReports, st.MaxFractionLost)
	}
}
