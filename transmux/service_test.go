package transmux_test

import (
	"errors"
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
	sv.Pin(func(*media.Stream) bool { return true }) // packaged from publish, as a recording would
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

// A Source replaces the published stream: consumers see and the transmuxer
// reads the stream it returns, and its release runs once when the transmuxer
// is done. A failing Source leaves the published stream in place.
func TestServiceSource(t *testing.T) {
	fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/av.ogg", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg := media.NewRegistry()
	sv := transmux.NewService(transmux.Settings{ReaderQueue: len(fx.Frames) + 1}, nil)
	var derived *media.Stream
	released := 0
	sv.SetSource(func(s *media.Stream) (*media.Stream, func(), error) {
		if s.Name == "broken" {
			return nil, nil, errors.New("no stage")
		}
		derived = media.NewStream(s.Name, fx.Tracks(), nil)
		return derived, func() { released++ }, nil
	})
	seen := map[string]*media.Stream{}
	rec := map[string]*recorder{}
	sv.AddConsumer(func(s *media.Stream) transmux.Sink {
		seen[s.Name] = s
		rec[s.Name] = &recorder{ended: make(chan struct{})}
		return rec[s.Name]
	})
	sv.Pin(func(*media.Stream) bool { return true }) // packaged from publish, as a recording would
	sv.Attach(reg)

	s, err := reg.Publish("staged", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if seen["staged"] != derived || s.Readers() != 0 || derived.Readers() != 1 {
		t.Fatalf("consumer saw %p (derived %p); readers: published %d, derived %d",
			seen["staged"], derived, s.Readers(), derived.Readers())
	}
	for _, f := range fx.Frames {
		derived.Write(f)
	}
	derived.Close()
	<-rec["staged"].ended
	reg.Unpublish(s)

	b, err := reg.Publish("broken", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if seen["broken"] != b || b.Readers() != 1 {
		t.Fatalf("failing source: consumer saw %p, want the published %p", seen["broken"], b)
	}
	reg.Unpublish(b)
	<-rec["broken"].ended
	sv.Close()
	if released != 1 || len(rec["staged"].segs) == 0 {
		t.Fatalf("release ran %d times (want 1); %d segments", released, len(rec["staged"].segs))
	}
}

// panicky is a Sink whose OnPart panics from its second part on.
type panicky struct {
	recorder
	parts int
}

func (p *panicky) OnPart(*transmux.Part) {
	if p.parts++; p.parts > 1 {
		panic("a bug in a sink")
	}
}

// A sink that panics is cut off alone: the stream's other sink gets every
// segment and its end, the panic is counted, and the panicking sink is
// never called again (not even OnEnd).
func TestServiceSinkPanicIsolated(t *testing.T) {
	fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/av.ogg", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg := media.NewRegistry()
	sv := transmux.NewService(transmux.Settings{ReaderQueue: len(fx.Frames) + 1}, nil)
	bad := &panicky{recorder: recorder{ended: make(chan struct{})}}
	good, ref := &recorder{ended: make(chan struct{})}, &recorder{ended: make(chan struct{})}
	sv.AddConsumer(func(*media.Stream) transmux.Sink { return bad })
	sv.AddConsumer(func(*media.Stream) transmux.Sink { return good })
	sv.Pin(func(*media.Stream) bool { return true })
	sv.Attach(reg)
	s, err := reg.Publish("panics", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx.Frames {
		s.Write(f)
	}
	reg.Unpublish(s)
	<-good.ended
	sv.Close()

	// What a sink alone gets of the same frames, for comparison.
	tm, err := transmux.New(transmux.Settings{}, fx.Tracks(), ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx.Frames {
		_ = tm.WriteFrame(f)
	}
	tm.End(nil)
	<-ref.ended

	if len(good.segs) == 0 || len(good.segs) != len(ref.segs) {
		t.Fatalf("the other sink got %d segments, want %d", len(good.segs), len(ref.segs))
	}
	if n := sv.SinkPanics(); n != 1 {
		t.Errorf("SinkPanics %d, want 1", n)
	}
	if bad.parts != 2 || len(bad.segs) != 0 {
		t.Errorf("the panicking sink was called again: %d parts, %d segments", bad.parts, len(bad.segs))
	}
	select {
	case <-bad.ended:
		t.Error("the panicking sink got OnEnd")
	default:
	}
}
