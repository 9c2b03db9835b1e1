package rtmp

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/whipcast/whipcast/media"
)

// Golden bytes of the E-RTMP v2 Opus audio tags ("Enhanced Audio").
func TestERTMPOpusTags(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		// ExHeader(9)<<4 | SequenceStart(0), FOURCC "Opus", then OpusHead
		// (RFC 7845 5.1): magic, version 1, 2 channels, pre-skip 312 LE,
		// 48000 Hz LE, gain 0, mapping family 0.
		{"opus sequence start", opusSequenceStart(2),
			"90 4f707573 4f70757348656164 01 02 3801 80bb0000 0000 00"},
		{"opus sequence start mono", opusSequenceStart(1),
			"90 4f707573 4f70757348656164 01 01 3801 80bb0000 0000 00"},
		// ExHeader(9)<<4 | CodedFrames(1), FOURCC "Opus", the packet as sent.
		{"opus coded frame", opusFrame([]byte{0xfc, 0xff, 0xfe}), "91 4f707573 fcfffe"},
	} {
		want, _ := hex.DecodeString(stripSpaces(tc.want))
		if !bytes.Equal(tc.got, want) {
			t.Errorf("%s: % x, want % x", tc.name, tc.got, want)
		}
	}
	if opusFourCCNumber != 0x4f707573 {
		t.Errorf("FOURCC number %#x", opusFourCCNumber)
	}
	m := metadata(nil, &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}, 0, 0)
	if m["audiocodecid"] != float64(0x4f707573) || m["audiosamplerate"] != 48000.0 {
		t.Errorf("onMetaData for Opus: %v", m)
	}
}

// An enhanced muxer sends Opus as it came: the sequence start once, before
// the first packet, at the start keyframe's time, then one message per
// packet, interleaved with video by DTS.
func TestMuxerOpus(t *testing.T) {
	v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	cfg := &media.Config{SPS: []byte{0x67, 0x42, 0xC0, 0x1F}, PPS: []byte{0x68}}
	m := newMuxer(v, a)
	var got []string
	push := func(f *media.Frame) {
		msgs, err := m.push(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			kind := "v"
			if msg.kind == msgAudio {
				kind = "a"
				if msg.body[0] == 0x90 {
					kind += "seq"
				} else if msg.body[0] != 0x91 || string(msg.body[1:5]) != "Opus" || !bytes.Equal(msg.body[5:], []byte{0xfc, 1}) {
					t.Errorf("audio message % x", msg.body)
				}
			} else if msg.body[1] == 0 {
				kind += "seq"
			}
			got = append(got, kind+":"+itoa(msg.ts))
		}
	}
	const t0 = 10
	push(&media.Frame{Track: a, DTS: t0*48000 - 960, PTS: t0*48000 - 960, Keyframe: true, Data: []byte{0xfc, 1}}) // before the start keyframe: dropped
	push(&media.Frame{Track: v, DTS: t0 * 90000, PTS: t0 * 90000, Keyframe: true, Config: cfg, Data: []byte{1}})
	for i := range int64(3) {
		push(&media.Frame{Track: a, DTS: t0*48000 + 960*i, PTS: t0*48000 + 960*i, Keyframe: true, Data: []byte{0xfc, 1}})
	}
	push(&media.Frame{Track: v, DTS: t0*90000 + 3000, PTS: t0*90000 + 3000, Data: []byte{1}})
	push(&media.Frame{Track: a, DTS: t0*48000 + 960*3, PTS: t0*48000 + 960*3, Keyframe: true, Data: []byte{0xfc, 1}})
	// a:40 waits for video to pass 40 ms (DTS order across tracks).
	want := "vseq:0 v:0 aseq:0 a:0 a:20 v:33"
	if s := join(got); s != want {
		t.Errorf("sent %s\nwant %s", s, want)
	}
}
