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
	injectTranscoder(t, func(tc codec.AudioTranscoder) codec.AudioTranscoder {
		return &failingTranscoder{AudioTranscoder: tc, failAt: 50, healAt: 150}
	})
	r := newAVRig(t)
	src, rd, a := r.src, r.rd, r.stage
	// 5 s at 50 Opus packets and 25 video frames a second; packets 50-149
	// (1-3 s) fail, the codec heals at 3 s.
	r.write(fixtureOpus(t)[:250])
	src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var nv int
	var aacBefore, aacAfter int // AAC frames before 1 s, from 3.1 s on
	for {
		f, err := rd.Read(ctx)
		if errors.Is(err, media.ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatalf("after %d video frames: %v", nv, err)
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
	if nv != 125 {
		t.Errorf("%d video frames of 125", nv)
	}
	if got := a.Errors(); got != 100 {
		t.Errorf("Errors() = %d, want the 100 packets that failed", got)
	}
	if aacBefore == 0 || aacAfter == 0 {
		t.Errorf("AAC frames before the failure %d, after it %d; want both", aacBefore, aacAfter)
	}
}

// stallingTranscoder is a real transcoder that blocks at its stallAt-th
// packet until release is closed, as a codec stuck in a call would.
type stallingTranscoder struct {
	codec.AudioTranscoder
	n, stallAt int
	stalled    chan struct{}
	release    chan struct{}
}

func (s *stallingTranscoder) Transcode(data []byte, pts int64) ([]codec.Packet, error) {
	if s.n++; s.n == s.stallAt {
		close(s.stalled)
		<-s.release
	}
	return s.AudioTranscoder.Transcode(data, pts)
}

// TestAACStageStallVideoGoesOn: video never waits on the transcode. With
// the stage stuck inside the codec, every video frame the publisher writes
// reaches the derived stream's readers; the audio follows once it unsticks.
func TestAACStageStallVideoGoesOn(t *testing.T) {
	st := &stallingTranscoder{stallAt: 10, stalled: make(chan struct{}), release: make(chan struct{})}
	injectTranscoder(t, func(tc codec.AudioTranscoder) codec.AudioTranscoder {
		st.AudioTranscoder = tc
		return st
	})
	r := newAVRig(t)
	src, rd := r.src, r.rd
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r.write(fixtureOpus(t)[:250])
	select {
	case <-st.stalled:
	case <-ctx.Done():
		t.Fatal("the transcoder never got its packets")
	}
	// The stage is stuck now: all 125 video frames must be readable.
	nv, na := 0, 0
	for nv < 125 {
		f, err := rd.Read(ctx)
		if err != nil {
			t.Fatalf("after %d video frames with the transcode stuck: %v", nv, err)
		}
		if f.Track.Kind == media.KindVideo {
			nv++
		} else {
			na++
		}
	}
	close(st.release)
	src.Close()
	for {
		f, err := rd.Read(ctx)
		if errors.Is(err, media.ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Track.Kind == media.KindAudio {
			na++
		}
	}
	if na < 200 {
		t.Errorf("%d AAC frames of ~234 after the stage came back", na)
	}
}

// injectTranscoder makes the stage's transcoders wrap's of real ones for
// the rest of the test.
func injectTranscoder(t *testing.T, wrap func(codec.AudioTranscoder) codec.AudioTranscoder) {
	newOpusToAAC = func(s codec.AACSettings) (codec.AudioTranscoder, error) {
		tc, err := codec.NewOpusToAAC(s)
		if err != nil {
			return nil, err
		}
		return wrap(tc), nil
	}
	t.Cleanup(func() { newOpusToAAC = codec.NewOpusToAAC })
}

// avRig is a source stream of H.264 + Opus, its AAC stage acquired and a
// reader of the derived stream.
type avRig struct {
	src          *media.Stream
	video, audio *media.Track
	stage        *AAC
	rd           *media.Reader
}

func newAVRig(t *testing.T) *avRig {
	t.Helper()
	r := &avRig{
		video: &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000},
		audio: &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2},
	}
	r.src = media.NewStream("cam", []*media.Track{r.video, r.audio}, nil)
	r.stage = NewAAC(codec.AACSettings{}, nil)
	d, release, err := r.stage.Acquire(r.src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	r.rd = d.Subscribe("test", 4096)
	t.Cleanup(r.rd.Close)
	return r
}

// write publishes pkts (20 ms each) with a video frame every 40 ms
// between them, a keyframe a second.
func (r *avRig) write(pkts [][]byte) {
	cfg := &media.Config{SPS: []byte{0x67}, PPS: []byte{0x68}}
	for i, p := range pkts {
		if i%2 == 0 {
			v := int64(i/2) * 3600
			r.src.Write(&media.Frame{Track: r.video, DTS: v, PTS: v, Keyframe: i%50 == 0, Config: cfg, Data: []byte{0, 0, 0, 1, 0x65}})
		}
		r.src.Write(&media.Frame{Track: r.audio, DTS: int64(i) * 960, PTS: int64(i) * 960, Keyframe: true, Data: p})
	}
}
