//go:build !nocodec

package stages

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
)

// failingTranscoder is a real transcoder that fails packets failAt to
// healAt-1 (counting from 0), as a codec that broke mid-stream and came
// back would.
type failingTranscoder struct {
	codec.AudioTranscoder
	n, failAt, healAt int
}

func (f *failingTranscoder) Transcode(data []byte, pts int64) ([]codec.Packet, error) {
	n := f.n
	f.n++
	if n >= f.failAt && n < f.healAt {
		return nil, errors.New("injected codec failure")
	}
	return f.AudioTranscoder.Transcode(data, pts)
}

// TestAACStageFailsMidStream: when the transcode fails mid-stream, the
// derived stream goes on: every video frame comes through, in order, the
// failed packets are counted (AAC.Errors), and AAC comes back when the codec
// does (the transcoder fills the hole with silence, as after any gap in the
// Opus timestamps); the derived stream ends only with its source.
func TestAACStageFailsMidStream(t *testing.T) {
	newOpusToAAC = func(s codec.AACSettings) (codec.AudioTranscoder, error) {
		tc, err := codec.NewOpusToAAC(s)
		if err != nil {
			return nil, err
		}
		return &failingTranscoder{AudioTranscoder: tc, failAt: 50, healAt: 150}, nil
	}
	t.Cleanup(func() { newOpusToAAC = codec.NewOpusToAAC })

	pkts := fixtureOpus(t)[:250] // 5 s
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	src := media.NewStream("cam", []*media.Track{video, audio}, nil)
	a := NewAAC(codec.AACSettings{}, nil)
	d, release, err := a.Acquire(src)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rd := d.Subscribe("test", 4096)
	defer rd.Close()

	cfg := &media.Config{SPS: []byte{0x67}, PPS: []byte{0x68}}
	// 5 s at 50 Opus packets and 25 video frames a second, interleaved;
	// packets 50-149 (1-3 s) fail, the codec heals at 3 s.
	for i, p := range pkts {
		if i%2 == 0 {
			v := int64(i/2) * 3600
			src.Write(&media.Frame{Track: video, DTS: v, PTS: v, Keyframe: i%50 == 0, Config: cfg, Data: []byte{0, 0, 0, 1, 0x65}})
		}
		src.Write(&media.Frame{Track: audio, DTS: int64(i) * 960, PTS: int64(i) * 960, Keyframe: true, Data: p})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var nv int
	var aacBefore, aacAfter int // AAC frames ending before 1 s, starting after 3 s
	for nv < 125 {
		f, err := rd.Read(ctx)
		if err != nil {
			t.Fatalf("after %d video frames: %v (the derived stream must go on without its audio)", nv, err)
		}
		switch f.Track.Kind {
		case media.KindVideo:
			if f.DTS != int64(nv)*3600 {
				t.Fatalf("video frame %d at %d: frames lost or reordered", nv, f.DTS)
			}
			nv++
		case media.KindAudio:
			switch sec := float64(f.DTS) / codec.AACSampleRate; {
			case sec < 1:
				aacBefore++
			case sec >= 3.1:
				aacAfter++
			}
		}
	}
	if got := a.Errors(); got != 100 {
		t.Errorf("Errors() = %d, want the 100 packets that failed", got)
	}
	if aacBefore == 0 || aacAfter == 0 {
		t.Errorf("AAC frames before the failure %d, after it %d; want both", aacBefore, aacAfter)
	}
	select {
	case <-d.Done():
		t.Fatal("the derived stream ended while its source goes on")
	default:
	}
	src.Close()
}
