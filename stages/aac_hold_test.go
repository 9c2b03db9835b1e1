//go:build !nocodec

package stages

import (
	"context"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
)

// TestAACStageHoldFlush: the stage holds Opus packets to transcode several
// at once (aacHold), but never keeps audio back while the stream goes on
// without it: when the audio stops and video carries on, or at a video
// keyframe, the held packets are transcoded, and the derived stream gets
// every AAC frame that the codec gives for them, before the stream ends.
func TestAACStageHoldFlush(t *testing.T) {
	if aacHold < 2*960 {
		t.Skip("no hold")
	}
	const t0 = 96000
	// Packets past the last full hold, so some are held when audio stops.
	n := 100
	for n%int((aacHold+959)/960) == 0 {
		n++
	}
	pkts := fixtureOpus(t)[:n]
	// The last AAC frame the codec gives for these packets before a flush.
	tc, err := codec.NewOpusToAAC(codec.AACSettings{Channels: 2, Bitrate: codec.DefaultAACBitrate})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(-1)
	for i, p := range pkts {
		out, err := tc.Transcode(p, t0+int64(i)*960)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			want = o.PTS
		}
	}
	tc.Close()

	for _, tc := range []struct {
		name     string
		keyframe bool
	}{{"video goes on", false}, {"keyframe", true}} {
		t.Run(tc.name, func(t *testing.T) {
			video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
			audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
			src := media.NewStream("cam", []*media.Track{video, audio}, nil)
			defer src.Close()
			d, release, err := NewAAC(codec.AACSettings{}, nil).Acquire(src)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			rd := d.Subscribe("test", 0)
			defer rd.Close()
			cfg := &media.Config{SPS: []byte{0x67}, PPS: []byte{0x68}}
			vts := int64(t0 / 48000 * 90000)
			src.Write(&media.Frame{Track: video, DTS: vts, PTS: vts, Keyframe: true, Config: cfg, Data: []byte{0, 0, 0, 1, 0x65}})
			for i, p := range pkts {
				src.Write(&media.Frame{Track: audio, DTS: t0 + int64(i)*960, PTS: t0 + int64(i)*960, Keyframe: true, Data: p})
			}
			end := int64(t0+n*960) * 90000 / 48000
			if tc.keyframe {
				src.Write(&media.Frame{Track: video, DTS: end, PTS: end, Keyframe: true, Config: cfg, Data: []byte{0, 0, 0, 1, 0x65}})
			} else {
				// Video runs on for 300 ms after the last audio packet.
				for v := end; v < end+27000; v += 3000 {
					src.Write(&media.Frame{Track: video, DTS: v, PTS: v, Data: []byte{0, 0, 0, 1, 0x41}})
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				f, err := rd.Read(ctx)
				if err != nil {
					t.Fatalf("the AAC frame at %d never came while the stream went on: %v", want, err)
				}
				if f.Track.Codec == media.CodecAAC && f.PTS >= want {
					return
				}
			}
		})
	}
}
