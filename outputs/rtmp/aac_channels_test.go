package rtmp

import (
	"bytes"
	"testing"

	"github.com/whipcast/whipcast/media"
)

// TestMetadataAACChannels: onMetaData describes the AAC that is sent. The
// Opus→AAC stage decides mono or stereo at the source's first packet and
// leaves the track's Channels 0, so the muxer takes the count from the
// AudioSpecificConfig of the sequence header (which itself goes as is).
func TestMetadataAACChannels(t *testing.T) {
	for _, tc := range []struct {
		name     string
		asc      []byte
		channels int
	}{
		{"mono", []byte{0x11, 0x88}, 1},
		{"stereo", []byte{0x11, 0x90}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
			a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecAAC, ClockRate: 48000}
			m := newMuxer(v, a)
			if md := metadata(nil, m.audioInfo(), 0, 0); md["audiochannels"] != nil {
				t.Errorf("channels announced before any AAC config: %v", md["audiochannels"])
			}
			cfg := &media.Config{SPS: []byte{0x67, 0x42, 0xC0, 0x1F}, PPS: []byte{0x68}}
			acfg := &media.Config{AudioSpecificConfig: tc.asc}
			var seq []byte
			for _, f := range []*media.Frame{
				{Track: v, Keyframe: true, Config: cfg, Data: []byte{1}},
				{Track: a, Keyframe: true, Config: acfg, Data: []byte{1}},
				{Track: v, DTS: 3000, PTS: 3000, Data: []byte{1}},
			} {
				msgs, err := m.push(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, msg := range msgs {
					if msg.kind == msgAudio && msg.header {
						seq = msg.body
					}
				}
			}
			if want := append([]byte{0xaf, 0x00}, tc.asc...); !bytes.Equal(seq, want) {
				t.Errorf("AAC sequence header % x, want % x", seq, want)
			}
			md := metadata(cfg, m.audioInfo(), 0, 0)
			if md["audiochannels"] != float64(tc.channels) || md["stereo"] != (tc.channels == 2) {
				t.Errorf("onMetaData audiochannels %v stereo %v, want %d", md["audiochannels"], md["stereo"], tc.channels)
			}
		})
	}
}
