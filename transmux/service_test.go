package transmux_test

import (
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// recorder is a Sink that keeps what it was given.
type recorder struct {
	mu    sync.Mutex
	segs  []*transmux.Segment
	ended chan struct{}
}

func (r *recorder) OnInit(*transmux.Init) {}
func (r *recorder) OnPart(*transmux.Part) {}
func (r *recorder) OnSegment(s *transmux.Segment) {
	r.mu.Lock()
	r.segs = append(r.segs, s)
	r.mu.Unlock()
}
func (r *recorder) OnEnd(error) { close(r.ended) }

// Two consumers of one stream must get the very same segments: the stream is
// muxed once and the bytes are shared, never copied per consumer.
func TestServiceSharesOneMuxAmongConsumers(t *testing.T) {
	fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/av.ogg", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg := media.NewRegistry()
	// The frames are written all at once, far faster than real time: the
	// reader's queue must hold them all, or the hub drops it (as it should
	// a slow reader) and the consumers get nothing (a flake under -race).
	sv := transmux.NewService(transmux.Settings{ReaderQueue: len(fx.Frames) + 1}, nil)
	a, b := &recorder{ended: make(chan struct{})}, &recorder{ended: make(chan struct{})}
	sv.AddConsumer(func(*media.Stream) transmux.Sink { return a })
	sv.AddConsumer(func(*media.Stream) transmux.Sink { return nil }) // skips the stream
	sv.AddConsumer(func(*media.Stream) transmux.Sink { return b })
	sv.Attach(reg)
	s, err := reg.Publish("shared", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Readers(); n != 1 {
		t.Fatalf("%d readers on the stream, want 1 transmuxer for all consumers", n)
	}
	for _, f := range fx.Frames {
		s.Write(f)
	}
	reg.Unpublish(s)
	<-a.ended
	<-b.ended
	sv.Close()
	sv.Close()
	if len(a.segs) == 0 || len(a.segs) != len(b.segs) {
		t.Fatalf("consumers got %d and %d segments", len(a.segs), len(b.segs))
	}
	for i := range a.segs {
		if a.segs[i] != b.segs[i] {
			t.Fatalf("segment %d differs between consumers: muxed twice", i)
		}
	}
}
