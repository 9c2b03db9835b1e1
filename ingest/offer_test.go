package ingest

import "testing"

// answerHas reads the parsed answer: the codec must be on an accepted m-line
// of the kind asked, not anywhere in the text.
func TestAnswerHas(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	ok := head + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n"
	rejected := head + "m=video 0 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n"
	onAudio := head + "m=audio 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n"
	longer := head + "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/900000\r\n"
	for _, c := range []struct {
		name, sdp string
		want      bool
	}{{"accepted", ok, true}, {"rejected m-line", rejected, false}, {"on the audio m-line", onAudio, false},
		{"another clock rate", longer, false}, {"not SDP", "h264/90000", false}} {
		if got := answerHas(c.sdp, "video", "h264/90000"); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
