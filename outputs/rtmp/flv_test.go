package rtmp

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/whipcast/whipcast/media"
)

func TestFLVTags(t *testing.T) {
	cfg := &media.Config{SPS: []byte{0x67, 0x42, 0xC0, 0x1F, 0xAA}, PPS: []byte{0x68, 0xCE}}
	seq, err := videoSequenceHeader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		// keyframe|AVC, seq header, cts 0, AVCDecoderConfigurationRecord
		{"avc sequence header", seq, "17 00 000000 01 42c01f ff e1 0005 6742c01faa 01 0002 68ce"},
		// keyframe|AVC, NALU, cts 66 ms, AVCC data
		{"avc keyframe", videoFrame([]byte{0, 0, 0, 1, 0x65}, true, 66), "17 01 000042 0000000165"},
		{"avc inter frame", videoFrame([]byte{0, 0, 0, 1, 0x41}, false, 0), "27 01 000000 0000000141"},
		// AAC|44k|16bit|stereo = 0xAF, seq header, AudioSpecificConfig (LC 48k stereo)
		{"aac sequence header", audioTag([]byte{0x11, 0x90}, true), "af 00 1190"},
		{"aac raw", audioTag([]byte{0x21, 0x10}, false), "af 01 2110"},
	} {
		want, _ := hex.DecodeString(stripSpaces(tc.want))
		if !bytes.Equal(tc.got, want) {
			t.Errorf("%s: % x, want % x", tc.name, tc.got, want)
		}
	}
	if _, err := videoSequenceHeader(&media.Config{SPS: []byte{0x67}}); err == nil {
		t.Error("a truncated SPS made a sequence header")
	}
}

func stripSpaces(s string) string { return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)) }

// TestMuxerInterleave: starts at a keyframe with sequence headers, drops
// audio from before it, orders audio and video by DTS with ms timestamps
// from the stream timeline, and sends a new sequence header on a new Config.
func TestMuxerInterleave(t *testing.T) {
	v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecAAC, ClockRate: 48000, Channels: 2}
	cfg := &media.Config{SPS: []byte{0x67, 0x42, 0xC0, 0x1F}, PPS: []byte{0x68}}
	acfg := &media.Config{AudioSpecificConfig: []byte{0x11, 0x90}}
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
			}
			if msg.body[1] == 0 {
				kind += "seq"
			}
			got = append(got, kind+":"+itoa(msg.ts))
		}
	}
	const t0 = 10                                                                                                           // seconds into the stream timeline
	push(&media.Frame{Track: v, DTS: (t0 - 1) * 90000, PTS: (t0 - 1) * 90000, Data: []byte{1}})                             // before any keyframe: dropped
	push(&media.Frame{Track: a, DTS: t0*48000 - 1024, PTS: t0*48000 - 1024, Config: acfg, Keyframe: true, Data: []byte{1}}) // dropped: before start
	push(&media.Frame{Track: v, DTS: t0 * 90000, PTS: t0*90000 + 3000, Keyframe: true, Config: cfg, Data: []byte{1}})
	push(&media.Frame{Track: v, DTS: t0*90000 + 3000, PTS: t0*90000 + 3000, Data: []byte{1}})
	push(&media.Frame{Track: a, DTS: t0 * 48000, PTS: t0 * 48000, Config: acfg, Keyframe: true, Data: []byte{1}})
	push(&media.Frame{Track: a, DTS: t0*48000 + 1024, PTS: t0*48000 + 1024, Config: acfg, Keyframe: true, Data: []byte{1}})
	push(&media.Frame{Track: a, DTS: t0*48000 + 2048, PTS: t0*48000 + 2048, Config: acfg, Keyframe: true, Data: []byte{1}})
	cfg2 := &media.Config{SPS: []byte{0x67, 0x42, 0xC0, 0x28}, PPS: []byte{0x68}}
	push(&media.Frame{Track: v, DTS: t0*90000 + 6000, PTS: t0*90000 + 6000, Keyframe: true, Config: cfg2, Data: []byte{1}})
	push(&media.Frame{Track: a, DTS: t0*48000 + 4096, PTS: t0*48000 + 4096, Config: acfg, Keyframe: true, Data: []byte{1}})
	want := "vseq:0 v:0 aseq:0 a:0 a:21 v:33 a:43 vseq:67 v:67"
	if s := join(got); s != want {
		t.Errorf("sent %s\nwant %s", s, want)
	}
}

func itoa(n uint32) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

// TestMuxerStrictMs: frames whose DTS round to one ms (a timeline that
// clamped, 1-tick steps) still get strictly increasing ms per track, while
// a sequence header keeps its frame's ms.
func TestMuxerStrictMs(t *testing.T) {
	v := &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	a := &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecAAC, ClockRate: 48000, Channels: 2}
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
	push(&media.Frame{Track: v, DTS: 0, Keyframe: true, Config: cfg, Data: []byte{1}})
	for i := int64(1); i < 5; i++ {
		push(&media.Frame{Track: v, DTS: i, Data: []byte{1}}) // 1 tick apart: all round to 0 ms
		push(&media.Frame{Track: a, DTS: i * 10, Config: acfg, Keyframe: true, Data: []byte{1}})
	}
	for i := int64(1); i < 30; i++ {
		push(&media.Frame{Track: v, DTS: 5 + i*3000, Data: []byte{1}})
		push(&media.Frame{Track: a, DTS: 50 + i*1024, Config: acfg, Keyframe: true, Data: []byte{1}})
	}
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
		if int64(msg.ts) <= last[msg.kind] {
			t.Errorf("kind %d: frame at %d ms after one at %d", msg.kind, msg.ts, last[msg.kind])
		}
		last[msg.kind] = int64(msg.ts)
	}
	if len(got) < 50 {
		t.Errorf("%d messages", len(got))
	}
}
