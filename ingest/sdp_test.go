package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/whipcast/whipcast/media"
)

// testOffer is shaped like Chromium's publish offer: VP8 listed before
// H.264, both packetization modes, Opus with in-band FEC.
const testOffer = `
v=0
o=- 4215775240449105457 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
a=mid:0
a=sendonly
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
m=video 9 UDP/TLS/RTP/SAVPF 96 102 103
c=IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
a=mid:1
a=sendonly
a=rtcp-mux
a=rtpmap:96 VP8/90000
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
`

var testOfferVP8Only = strings.Replace(strings.Replace(testOffer, "a=rtpmap:102 H264/90000\n", "", 1), "96 102 103", "96 103", 1)

var testOfferNoOpus = strings.Replace(testOffer, "opus/48000/2", "PCMU/8000", 1)

const testTrickle = `
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
m=audio 9 UDP/TLS/RTP/SAVPF 111
a=mid:0
a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host
a=end-of-candidates
`

func TestCheckOffer(t *testing.T) {
	tests := []struct {
		name  string
		offer string
		want  error
	}{
		{"chromium-like", testOffer, nil},
		{"VP8 only", testOfferVP8Only, ErrNoVideoCodec},
		{"no opus", testOfferNoOpus, ErrNoAudioCodec},
		{"empty", "", ErrBadOffer},
		{"garbage", "hello", ErrBadOffer},
		{"recvonly", strings.ReplaceAll(testOffer, "a=sendonly", "a=recvonly"), ErrBadOffer},
		{"no audio m-line", strings.SplitAfter(testOffer, "a=fmtp:111 minptime=10;useinbandfec=1\n")[0], ErrNoVideoCodec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := checkOffer(crlf(tc.offer))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && info.iceUfrag != "abcd" {
				t.Errorf("ufrag %q", info.iceUfrag)
			}
		})
	}
}

func TestParseTrickle(t *testing.T) {
	f, err := parseTrickle(crlf(testTrickle))
	if err != nil {
		t.Fatal(err)
	}
	if f.iceUfrag != "abcd" || len(f.candidates) != 1 || f.candidates[0].mid != "0" || !f.endOfCandidates {
		t.Fatalf("%+v", f)
	}
	// Eyevinn's whip-web-client 1.1.7, as it trickles: the candidate once
	// per media section, each with component 0, IPv6 in brackets, and no
	// a=end-of-candidates.
	ey := "a=ice-ufrag:abcd\r\na=ice-pwd:pwdpwdpwdpwdpwdpwdpwdpwd\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n" +
		"a=candidate:1 0 udp 2113937151 127.0.0.1 5000 typ host\r\nm=audio 9 RTP/AVP 0\r\na=mid:1\r\n" +
		"a=candidate:1 0 udp 2113937151 127.0.0.1 5000 typ host\r\n" +
		"a=candidate:2 0 tcp 1518288127 [::1] 9 typ host tcptype active\r\n"
	f, err = parseTrickle(ey)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.candidates) != 3 || f.candidates[1].mid != "1" || f.candidates[0].candidate != "candidate:1 1 udp 2113937151 127.0.0.1 5000 typ host" ||
		f.candidates[2].candidate != "candidate:2 1 tcp 1518288127 ::1 9 typ host tcptype active" {
		t.Errorf("Eyevinn's fragment: %+v", f)
	}
	for _, bad := range []string{"a=candidate:1 1 udp\r\n", "garbage\r\n", "a=ice-ufrag:\r\n"} {
		if _, err := parseTrickle(bad); !errors.Is(err, ErrBadTrickle) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestPublishRefusedLeavesNothing: refused offers create no PeerConnection
// and no registry entry.
func TestPublishRefusedLeavesNothing(t *testing.T) {
	checkNoLeaks(t)
	env := newTestEnv(t, Config{}, nil)
	tests := []struct {
		stream, offer string
		want          error
	}{
		{"ok/name", testOfferVP8Only, ErrNoVideoCodec},
		{"ok/name", testOfferNoOpus, ErrNoAudioCodec},
		{"ok/name", "nonsense", ErrBadOffer},
		{"bad name", testOffer, media.ErrBadName},
	}
	for _, tc := range tests {
		_, _, err := env.srv.Publish(t.Context(), tc.stream, crlf(tc.offer))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.stream, err, tc.want)
		}
	}
	env.waitEmpty(t)
}
