package transmux

import (
	"bytes"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/whipcast/whipcast/media"
)

// TestAACInitChannels: an AAC init takes its channel count from the
// AudioSpecificConfig, which decoders follow, so the sample entry, the
// esds and the HLS/DASH channel attributes (Init.Channels) agree with it:
// the Opus→AAC stage picks mono or stereo at the source's first packet and
// leaves the track's Channels 0.
func TestAACInitChannels(t *testing.T) {
	for _, tc := range []struct {
		name     string
		track    int
		asc      []byte
		channels int
	}{
		{"mono from the stage", 0, []byte{0x11, 0x88}, 1},   // LC, 48 kHz, 1 channel
		{"stereo from the stage", 0, []byte{0x11, 0x90}, 2}, // LC, 48 kHz, 2 channels
		{"config wins over the track", 2, []byte{0x11, 0x88}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, ClockRate: 48000, Channels: tc.track}
			in, err := newInit(tr, &media.Config{AudioSpecificConfig: tc.asc}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if in.Channels != tc.channels || in.Codec != "mp4a.40.2" || in.SampleRate != 48000 {
				t.Fatalf("init %d channels, codec %q, %d Hz; want %d, mp4a.40.2, 48000", in.Channels, in.Codec, in.SampleRate, tc.channels)
			}
			f, err := mp4.DecodeFile(bytes.NewReader(in.Data))
			if err != nil || f.Init == nil {
				t.Fatal(err)
			}
			mp4a := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Mp4a
			if mp4a == nil || int(mp4a.ChannelCount) != tc.channels || mp4a.Esds == nil {
				t.Fatalf("mp4a sample entry %+v", mp4a)
			}
			if got := mp4a.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig; !bytes.Equal(got, tc.asc) {
				t.Errorf("esds carries %x, want %x", got, tc.asc)
			}
		})
	}
}
