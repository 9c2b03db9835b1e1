package ingest

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// chainReader binds a stream of mime through report + TWCC (as the server
// configures them), with headerCache under them when cached, over a reader
// that returns pkt.
func chainReader(t *testing.T, cached bool, mime string, pkt []byte) (interceptor.RTPReader, func()) {
	t.Helper()
	ir := &interceptor.Registry{}
	if cached {
		ir.Add(headerCacheFactory{})
	}
	rf, err := report.NewReceiverInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	ir.Add(rf)
	tf, err := twcc.NewSenderInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	ir.Add(tf)
	chain, err := ir.Build("")
	if err != nil {
		t.Fatal(err)
	}
	chain.BindRTCPWriter(interceptor.RTCPWriterFunc(func([]rtcp.Packet, interceptor.Attributes) (int, error) { return 0, nil }))
	info := &interceptor.StreamInfo{SSRC: 1234, ClockRate: 90000, MimeType: mime,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: 3}}}
	r := chain.BindRemoteStream(info, interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, pkt), a, nil
	}))
	return r, func() { _ = chain.Close() }
}

func testRTP(t *testing.T, seq uint16) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 9000, SSRC: 1234}, Payload: make([]byte, 1000)}
	if err := p.SetExtension(3, []byte{0, byte(seq)}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With headerCache under them, pion's report and TWCC interceptors read each
// packet without allocating, and the header they are given is the packet's.
func TestHeaderCacheNoAllocs(t *testing.T) {
	if rtpHeaderKey == nil {
		t.Fatal("pion's header cache key not found")
	}
	pkt := testRTP(t, 77)
	buf := make([]byte, 1500)
	perRead := map[bool]float64{}
	for _, cached := range []bool{false, true} {
		r, stop := chainReader(t, cached, webrtc.MimeTypeH264, pkt)
		perRead[cached] = testing.AllocsPerRun(200, func() {
			if _, _, err := r.Read(buf, nil); err != nil {
				t.Fatal(err)
			}
		})
		_, a, _ := r.Read(buf, nil)
		h, err := a.GetRTPHeader(buf)
		if err != nil || h.SequenceNumber != 77 || h.SSRC != 1234 {
			t.Fatalf("cached %v: header %+v: %v", cached, h, err)
		}
		stop()
	}
	t.Logf("allocations per packet: %v without headerCache, %v with", perRead[false], perRead[true])
	if perRead[true] != 0 {
		t.Fatalf("%v allocations per packet with headerCache (%v without)", perRead[true], perRead[false])
	}
	if perRead[false] == 0 {
		t.Fatal("pion's interceptors allocate nothing without headerCache: it is no longer needed")
	}
}

// RTX repair streams are not cached: pion queues their packets with their
// Attributes, so each read needs a map of its own.
func TestHeaderCacheSkipsRTX(t *testing.T) {
	r, stop := chainReader(t, true, webrtc.MimeTypeRTX, testRTP(t, 5))
	defer stop()
	buf := make([]byte, 1500)
	_, a1, _ := r.Read(buf, nil)
	_, a2, _ := r.Read(buf, nil)
	a1["probe"] = 1
	if a2["probe"] != nil {
		t.Fatal("an RTX stream's reads share one Attributes map")
	}
}
