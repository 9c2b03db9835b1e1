package transmux

import (
	"context"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
)

// gateSink blocks in OnPart after `after` parts until released, so its
// reader falls behind and skips.
type gateSink struct {
	*recorder
	after   int
	blocked chan struct{}
	release chan struct{}
}

func (g *gateSink) OnPart(p *Part) {
	g.recorder.OnPart(p)
	if len(g.parts) == g.after {
		close(g.blocked)
		<-g.release
	}
}

// A transmuxer whose reader fell behind (a sink blocked) resumes at the next
// keyframe on the same reader: one discontinuity, MSNs going on.
func TestResyncAfterReaderSkipped(t *testing.T) {
	fx := loadFixture(t)
	s := media.NewStream("live/slow", fx.Tracks(), nil)
	r := s.SubscribeSkipping("transmux", 20)
	defer r.Close()
	g := &gateSink{recorder: newRecorder(t), after: 5, blocked: make(chan struct{}), release: make(chan struct{})}
	m, _ := New(Settings{ReaderQueue: 2000}, s.Tracks, g)
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background(), r) }()
	half := len(fx.Frames) / 2
	i := 0
	// Feed at the reader's pace until the sink blocks, then flood the queue.
	blocked := false
	for ; i < half; i++ {
		s.Write(fx.Frames[i])
		for !blocked && r.Len() > 0 {
			select {
			case <-g.blocked:
				blocked = true
			case <-time.After(100 * time.Microsecond):
			}
		}
	}
	if !blocked {
		<-g.blocked
	}
	// Blocked, the reader skips at each overflow (a skip drops what was
	// queued, its marker included); it reads one skip when it goes on.
	if c := s.Skips()["transmux"]; s.Readers() != 1 || c.Skips < 1 {
		t.Fatalf("readers %d, skips %+v: want the reader kept, skipped", s.Readers(), c)
	}
	close(g.release)
	// The rest at the reader's pace again (a live publisher's, not a
	// flood that would overflow the 20-frame queue anew).
	for ; i < len(fx.Frames); i++ {
		s.Write(fx.Frames[i])
		for deadline := time.Now().Add(10 * time.Second); r.Len() > 0 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond)
		}
	}
	s.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m.Resyncs() != 1 {
		t.Fatalf("%d resyncs", m.Resyncs())
	}
	for _, k := range []media.Kind{media.KindVideo, media.KindAudio} {
		segs := g.segments(k)
		discs := 0
		for i, seg := range segs {
			if i > 0 && seg.MSN != segs[i-1].MSN+1 {
				t.Errorf("%v: MSN %d after %d", k, seg.MSN, segs[i-1].MSN)
			}
			if seg.Discontinuity {
				discs++
				if seg.Init.Version != 0 {
					t.Errorf("%v: same parameters must keep the init", k)
				}
				if k == media.KindVideo {
					if !seg.Parts[0].Independent {
						t.Error("resumed on a non-keyframe")
					}
				}
			}
		}
		if discs != 1 {
			t.Errorf("%v: %d discontinuities, want 1", k, discs)
		}
	}
	if len(g.inits) != 2 {
		t.Errorf("%d inits", len(g.inits))
	}
}

// Audio arriving ahead of video (or late) must still be cut at the video's
// times; audio before the first keyframe is dropped.
func TestFollowerOrdering(t *testing.T) {
	fx := loadFixture(t)
	for _, shift := range []int{-10, 10} { // audio arrives 10 frames early / late
		frames := append([]*media.Frame(nil), fx.VideoFrames...)
		var out []*media.Frame
		ai := 0
		for vi, vf := range frames {
			for ai < len(fx.AudioFrames) && float64(fx.AudioFrames[ai].DTS)/48000 <= float64(vi+shift)/30 {
				out = append(out, fx.AudioFrames[ai])
				ai++
			}
			out = append(out, vf)
		}
		out = append(out, fx.AudioFrames[ai:]...)
		rec := newRecorder(t)
		m, _ := New(Settings{}, fx.Tracks(), rec)
		for _, f := range out {
			_ = m.WriteFrame(f)
		}
		m.End(nil)
		vs, as := rec.segments(media.KindVideo), rec.segments(media.KindAudio)
		if len(vs) != 5 || len(as) != 5 {
			t.Fatalf("shift %d: %d/%d segments", shift, len(vs), len(as))
		}
		for i := range vs {
			vt := float64(vs[i].BaseMediaDecodeTime) / 90000
			at := float64(as[i].BaseMediaDecodeTime) / 48000
			if vt != at || as[i].MSN != vs[i].MSN {
				t.Errorf("shift %d seg %d: video %.3f audio %.3f", shift, i, vt, at)
			}
		}
	}
}
