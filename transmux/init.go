package transmux

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/whipcast/whipcast/media"
)

// Opus in ISOBMFF (https://opus-codec.org/docs/opus_in_isobmff.html): the
// sample entry is "Opus" with a dOps box; WebRTC Opus has a pre-skip of 312
// samples at 48 kHz (3.25 ms, what libopus reports).
const opusPreSkip = 312

// newInit builds the init segment for t with configuration c (nil for Opus).
func newInit(t *media.Track, c *media.Config, version int) (*Init, error) {
	ts := timescale(t)
	in := &Init{Track: t, Version: version, Timescale: ts}
	seg := mp4.CreateEmptyInit()
	seg.Ftyp = mp4.NewFtyp("iso6", 0, []string{"iso6", "cmfc", "mp41"})
	seg.Children[0] = seg.Ftyp
	switch t.Codec {
	case media.CodecH264:
		if c == nil || len(c.SPS) < 4 || len(c.PPS) == 0 {
			return nil, fmt.Errorf("%w: H.264 without SPS/PPS", ErrBadConfig)
		}
		trak := seg.AddEmptyTrack(ts, "video", "und")
		if err := trak.SetAVCDescriptor("avc1", [][]byte{c.SPS}, [][]byte{c.PPS}, true); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
		// RFC 6381 3.3: avc1.PPCCLL is profile_idc, the constraint flags byte
		// and level_idc, i.e. the three bytes after the SPS NAL header.
		in.Codec = "avc1." + hex.EncodeToString(c.SPS[1:4])
		in.Width, in.Height = c.Width, c.Height
		if in.Width == 0 || in.Height == 0 {
			in.Width = int(trak.Tkhd.Width >> 16)
			in.Height = int(trak.Tkhd.Height >> 16)
		}
	case media.CodecOpus:
		trak := seg.AddEmptyTrack(ts, "audio", "und")
		ch := channels(t)
		dops := &mp4.DopsBox{
			OutputChannelCount: byte(ch),
			PreSkip:            opusPreSkip,
			InputSampleRate:    48000,
		}
		// Opus sample entries always say 48 kHz, 16 bit (opus_in_isobmff 4.3).
		entry := mp4.CreateAudioSampleEntryBox("Opus", uint16(ch), 16, 48000, dops)
		trak.Mdia.Minf.Stbl.Stsd.AddChild(entry)
		in.Codec = "opus"
		in.SampleRate, in.Channels = 48000, ch
	case media.CodecAAC:
		if c == nil || len(c.AudioSpecificConfig) < 2 {
			return nil, fmt.Errorf("%w: AAC without AudioSpecificConfig", ErrBadConfig)
		}
		trak := seg.AddEmptyTrack(ts, "audio", "und")
		ch := aacChannels(t, c.AudioSpecificConfig)
		esds := mp4.CreateEsdsBox(c.AudioSpecificConfig)
		entry := mp4.CreateAudioSampleEntryBox("mp4a", uint16(ch), 16, uint16(min(ts, 65535)), esds)
		trak.Mdia.Minf.Stbl.Stsd.AddChild(entry)
		// RFC 6381 3.3: mp4a.40.<audioObjectType>, the first 5 bits of the ASC.
		in.Codec = fmt.Sprintf("mp4a.40.%d", c.AudioSpecificConfig[0]>>3)
		in.SampleRate, in.Channels = int(ts), ch
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedCodec, t.Codec)
	}
	var buf bytes.Buffer
	buf.Grow(int(seg.Size()))
	if err := seg.Encode(&buf); err != nil {
		return nil, fmt.Errorf("transmux: encode init: %w", err)
	}
	in.Data = buf.Bytes()
	return in, nil
}

func timescale(t *media.Track) uint32 {
	if t.ClockRate != 0 {
		return t.ClockRate
	}
	if t.Kind == media.KindVideo {
		return 90000
	}
	return 48000
}

func channels(t *media.Track) int {
	if t.Channels > 0 {
		return t.Channels
	}
	return 2
}

// aacChannels is the channel count of an AAC track: the AudioSpecificConfig's,
// which decoders follow, so the sample entry and the HLS/DASH channel
// attributes agree with it (the Opus→AAC stage picks mono or stereo at the
// source's first packet and leaves Track.Channels 0); the track's when the
// config has none (channelConfiguration 0: a PCE).
func aacChannels(t *media.Track, asc []byte) int {
	var c mpeg4audio.AudioSpecificConfig
	if err := c.Unmarshal(asc); err == nil {
		switch {
		case c.ChannelConfig >= 1 && c.ChannelConfig <= 6:
			return int(c.ChannelConfig)
		case c.ChannelConfig == 7:
			return 8
		}
	}
	return channels(t)
}

// Carries reports whether a Transmuxer carries t (New skips the tracks it
// cannot mux): what a Sink can expect to get parts of.
func Carries(t *media.Track) bool { return supported(t.Codec) }

func supported(c media.Codec) bool {
	return c == media.CodecH264 || c == media.CodecOpus || c == media.CodecAAC
}
