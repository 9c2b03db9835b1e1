package rtmp

import (
	"testing"

	"github.com/whipcast/whipcast/media"
)

// TestMuxerAudioBeforeKeyframe is the order seen at the start of a stream on
// a loaded machine (TestE2ERestreamAPI's flake): the AAC of the first 130 ms
// reaches the pusher before the first keyframe, whose many packets complete
// later, though its DTS is the same instant. The output must still start
// audio with the keyframe, not at the first audio read after it (+128 ms);
// audio older than the keyframe stays out, and timestamps stay monotonic.
func TestMuxerAudioBeforeKeyframe(t *testing.T) {
	for _, codec := range []media.Codec{media.CodecAAC, media.CodecOpus} {
		t.Run(codec.String(), func(t *testing.T) {
			v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
			a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: codec, ClockRate: 48000, Channels: 2}
			cfg := &media.Config{SPS: []byte{0x67, 0x42, 0xC0, 0x1F}, PPS: []byte{0x68}}
			acfg := &media.Config{AudioSpecificConfig: []byte{0x11, 0x90}}
			m := newMuxer(v, a)
			var got []message
			push := func(f *media.Frame) {
				msgs, err := m.push(f)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, msgs...)
			}
			const t0, frame = 10 * 48000, 1024
			audio := func(i int64) {
				push(&media.Frame{Track: a, DTS: t0 + i*frame, PTS: t0 + i*frame, Keyframe: true, Config: acfg, Data: []byte{0xfc, 1}})
			}
			// Older audio, then the first 130 ms of audio, all before the keyframe.
			for i := int64(-30); i <= 5; i++ {
				audio(i)
			}
			for i := int64(0); i < 6; i++ { // the keyframe and the frames queued behind it
				d := int64(10*90000 + i*3000)
				push(&media.Frame{Track: v, DTS: d, PTS: d, Keyframe: i == 0, Config: cfg, Data: []byte{1}})
			}
			for i := int64(6); i < 40; i++ {
				audio(i)
				if i%2 == 0 {
					d := int64(10*90000 + (i/2+3)*3000)
					push(&media.Frame{Track: v, DTS: d, PTS: d, Data: []byte{1}})
				}
			}
			first := map[msgKind]int64{}
			last := map[msgKind]int64{msgVideo: -1, msgAudio: -1}
			var prev int64
			for _, msg := range got {
				if int64(msg.ts) < prev {
					t.Errorf("ts %d after %d", msg.ts, prev)
				}
				prev = int64(msg.ts)
				if msg.header {
					continue
				}
				if _, ok := first[msg.kind]; !ok {
					first[msg.kind] = int64(msg.ts)
				}
				if int64(msg.ts) <= last[msg.kind] {
					t.Errorf("kind %d: %d ms after %d", msg.kind, msg.ts, last[msg.kind])
				}
				last[msg.kind] = int64(msg.ts)
			}
			fv, okV := first[msgVideo]
			fa, okA := first[msgAudio]
			if !okV || !okA {
				t.Fatalf("sent video %v audio %v", okV, okA)
			}
			if fv != 0 || fa != 0 {
				t.Errorf("first video at %d ms, first audio at %d ms; want both at 0 (the keyframe)", fv, fa)
			}
			if len(got) < 40 {
				t.Errorf("%d messages", len(got))
			}
		})
	}
}
