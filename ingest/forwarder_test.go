package ingest

import (
	"bytes"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/media"
)

func TestAnnexB(t *testing.T) {
	cfg := &media.Config{SPS: []byte{0x67, 1}, PPS: []byte{0x68, 2}}
	avcc := []byte{0, 0, 0, 2, 0x65, 9, 0, 0, 0, 1, 0x06}
	key := &media.Frame{Keyframe: true, Config: cfg, Data: avcc}
	want := []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 9, 0, 0, 0, 1, 0x06}
	if got := annexB(nil, key); !bytes.Equal(got, want) {
		t.Errorf("keyframe: % x", got)
	}
	delta := &media.Frame{Config: cfg, Data: []byte{0, 0, 0, 1, 0x41}}
	if got := annexB(nil, delta); !bytes.Equal(got, []byte{0, 0, 0, 1, 0x41}) {
		t.Errorf("delta frame: % x", got)
	}
	// A length past the end keeps what was whole and never panics.
	bad := &media.Frame{Data: []byte{0, 0, 0, 1, 0x41, 0, 0, 0, 9, 1}}
	if got := annexB(nil, bad); !bytes.Equal(got, []byte{0, 0, 0, 1, 0x41}) {
		t.Errorf("truncated AVCC: % x", got)
	}
}

// TestForwarderWaitsForKeyframe: nothing goes out before the first keyframe
// (audio included, so playback starts in sync), and after a lag the viewer
// skips everything up to the next keyframe, never half a GOP.
func TestForwarderWaitsForKeyframe(t *testing.T) {
	vt, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "v", "s")
	at, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "s")
	video := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	audio := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000}
	cfg := &media.Config{SPS: []byte{0x67}, PPS: []byte{0x68}}
	v := func(key bool) *media.Frame {
		return &media.Frame{Track: video, Keyframe: key, Config: cfg, Data: []byte{0, 0, 0, 1, 0x41}}
	}
	a := &media.Frame{Track: audio, Keyframe: true, Data: []byte{0xfc}}
	fw := &forwarder{video: vt, audio: at, waitKey: true}
	for _, f := range []*media.Frame{v(false), a, v(false), v(true), a, v(false)} {
		fw.write(f)
	}
	if fw.vFrames != 2 || fw.aFrames != 1 || fw.skipped != 3 {
		t.Errorf("start: %d video, %d audio sent, %d skipped; want 2, 1, 3", fw.vFrames, fw.aFrames, fw.skipped)
	}
	fw.waitKey = true // the viewer fell behind
	for _, f := range []*media.Frame{v(false), a, v(true), a} {
		fw.write(f)
	}
	if fw.vFrames != 3 || fw.aFrames != 2 || fw.skipped != 5 {
		t.Errorf("after lag: %d video, %d audio sent, %d skipped; want 3, 2, 5", fw.vFrames, fw.aFrames, fw.skipped)
	}
}

func TestH264SendFmtp(t *testing.T) {
	if got := h264SendFmtp(nil); got != "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" {
		t.Errorf("no SPS yet: %s", got)
	}
	high := &media.Config{SPS: []byte{0x67, 0x64, 0x00, 0x1f, 0xac}}
	if got := h264SendFmtp(high); got != "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f" {
		t.Errorf("High 3.1: %s", got)
	}
}
