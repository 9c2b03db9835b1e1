package media

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// consumerErrors records OnConsumerError calls.
type consumerErrors struct {
	mu  sync.Mutex
	got map[string]error
}

func (c *consumerErrors) add(kind string, _ *Stream, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[string]error{}
	}
	c.got[kind] = err
}

func (c *consumerErrors) get(kind string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[kind]
}

// TestConsumeReaderGetsEveryFrame: a ConsumeReader run gets the stream's
// frames from the first one written after the announce (its reader exists
// before it), and the stream's end ends it with no error reported.
func TestConsumeReaderGetsEveryFrame(t *testing.T) {
	g := NewRegistry()
	defer g.Close()
	var errs consumerErrors
	g.OnConsumerError(errs.add)
	got := make(chan []int64, 1)
	g.ConsumeReader("counter", 64, func(ctx context.Context, r *Reader) error {
		var dts []int64
		defer func() { got <- dts }()
		for {
			f, err := r.Read(ctx)
			if err != nil {
				return err
			}
			dts = append(dts, f.DTS)
		}
	})
	s, err := g.Claim("cam", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Announce(s)
	for i := range 20 { // at once: the consumer's goroutine may not run yet
		s.Write(&Frame{Track: s.Tracks[0], DTS: int64(i) * 3000, Keyframe: i == 0})
	}
	g.Unpublish(s)
	dts := <-got
	if len(dts) != 20 || dts[0] != 0 || dts[19] != 19*3000 {
		t.Fatalf("consumer got %d frames (%v), want all 20 from the first", len(dts), dts)
	}
	g.Close() // joins the run before errs is read
	if err := errs.get("counter"); err != nil {
		t.Errorf("a normal end was reported: %v", err)
	}
}

// TestConsumeReaderWhen: a stream the consumer wants is read from its
// first frame; one it declines gets no reader (so no keyframe request to
// its publisher) and no run.
func TestConsumeReaderWhen(t *testing.T) {
	g := NewRegistry()
	defer g.Close()
	got := make(chan string, 4)
	g.ConsumeReaderWhen("picky", 64, func(s *Stream) bool { return s.Name == "wanted" }, func(ctx context.Context, r *Reader) error {
		n := 0
		defer func() { got <- fmt.Sprintf("%s %d", r.Stream().Name, n) }()
		for {
			if _, err := r.Read(ctx); err != nil {
				return err
			}
			n++
		}
	})
	for _, name := range []string{"declined", "wanted"} {
		var asked atomic.Int32
		s, err := g.Claim(name, testTracks(), func() { asked.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		g.Announce(s)
		for i := range 10 {
			s.Write(&Frame{Track: s.Tracks[0], DTS: int64(i) * 3000, Keyframe: i == 0})
		}
		g.Unpublish(s)
		want := int32(0)
		if name == "wanted" {
			want = 1 // the consumer's reader, subscribed at the announce
		}
		if n := asked.Load(); n != want {
			t.Errorf("%s: %d keyframe requests, want %d", name, n, want)
		}
	}
	if r := <-got; r != "wanted 10" {
		t.Fatalf("consumer run: %q, want the wanted stream's 10 frames", r)
	}
	g.Close()
	select {
	case r := <-got:
		t.Fatalf("a second run: %q", r)
	default:
	}
}

// TestConsumeFailsAlone: a consumer that fails and one that panics are
// reported with their kind and the error; the stream and its other
// consumer go on.
func TestConsumeFailsAlone(t *testing.T) {
	g := NewRegistry()
	var errs consumerErrors
	g.OnConsumerError(errs.add)
	boom := errors.New("boom")
	g.Consume("fails", func(context.Context, *Stream) error { return boom })
	g.Consume("panics", func(context.Context, *Stream) error { panic("oops") })
	frames := make(chan int, 1)
	g.ConsumeReader("lives", 16, func(ctx context.Context, r *Reader) error {
		n := 0
		defer func() { frames <- n }()
		for {
			if _, err := r.Read(ctx); err != nil {
				return err
			}
			n++
		}
	})
	s, err := g.Publish("cam", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for errs.get("fails") == nil || errs.get("panics") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the failures were not reported")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 5 {
		s.Write(&Frame{Track: s.Tracks[0], DTS: int64(i) * 3000, Keyframe: i == 0})
	}
	if ended(s) {
		t.Fatal("a failed consumer ended the stream")
	}
	g.Unpublish(s)
	n := <-frames
	g.Close()
	if n != 5 {
		t.Errorf("the other consumer got %d frames, want 5", n)
	}
	if err := errs.get("fails"); !errors.Is(err, boom) {
		t.Errorf("fails: %v", err)
	}
	if err := errs.get("panics"); err == nil || !strings.Contains(err.Error(), "panic: oops") {
		t.Errorf("panics: %v", err)
	}
	if n := g.ConsumerErrors(); n["fails"] != 1 || n["panics"] != 1 || n["lives"] != 0 {
		t.Errorf("ConsumerErrors %v", n)
	}
	if err := errs.get("lives"); err != nil {
		t.Errorf("lives: %v", err)
	}
}

// TestConsumeOwnedByRegistry: runs end with their stream (Stream.Context),
// Close waits for every one (the package's goleak check would see one left),
// a claim never announced starts none, and none starts after Close.
func TestConsumeOwnedByRegistry(t *testing.T) {
	g := NewRegistry()
	var mu sync.Mutex
	started, stopped := 0, 0
	g.Consume("waiter", func(ctx context.Context, s *Stream) error {
		mu.Lock()
		started++
		mu.Unlock()
		<-ctx.Done()
		if !ended(s) {
			t.Error("the context ended before the stream")
		}
		mu.Lock()
		stopped++
		mu.Unlock()
		return ctx.Err()
	})
	a, _ := g.Publish("a", testTracks(), nil)
	b, _ := g.Claim("b", testTracks(), nil)
	if _, err := g.Publish("c", testTracks(), nil); err != nil {
		t.Fatal(err)
	}
	g.Unpublish(a)
	g.Unpublish(b) // never announced: nothing ran on it
	g.Close()
	mu.Lock()
	defer mu.Unlock()
	if started != 2 || stopped != 2 {
		t.Fatalf("started %d, stopped %d by Close, want 2 and 2", started, stopped)
	}
	if a.Context().Err() == nil {
		t.Error("an ended stream's context is not done")
	}
}

// TestConsumePrepared: prepare runs at the announce, before the first frame
// (a reader it subscribes gets every frame), and only for the streams it
// returns a run for; the run, owned by the registry, ends with its stream
// and its error is reported under its kind. A stream announced after Close
// still has its prepared run called, with a context already done, so what
// prepare took hold of is let go.
func TestConsumePrepared(t *testing.T) {
	g := NewRegistry()
	var errs consumerErrors
	g.OnConsumerError(errs.add)
	got := make(chan []int64, 4)
	released := make(chan string, 4)
	g.ConsumePrepared("out", func(s *Stream) func(context.Context) error {
		if s.Name == "skip" {
			return nil
		}
		r := s.Subscribe("out", 64) // here, before the first frame
		return func(ctx context.Context) error {
			defer func() { released <- s.Name }()
			defer r.Close()
			var dts []int64
			for {
				// Not ctx, which ends with the stream before its queue
				// is read: the reader's own end is the stream's.
				f, err := r.Read(context.Background())
				if err != nil {
					got <- dts
					if errors.Is(err, ErrStreamEnded) {
						return errors.New("out: its stream ended")
					}
					return nil
				}
				dts = append(dts, f.DTS)
			}
		}
	})
	s, err := g.Claim("cam", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Announce(s)
	for i := range 20 { // at once: the run's goroutine may not run yet
		s.Write(&Frame{Track: s.Tracks[0], DTS: int64(i) * 3000, Keyframe: i == 0})
	}
	g.Unpublish(s)
	if dts := <-got; len(dts) != 20 || dts[0] != 0 {
		t.Fatalf("the prepared reader got %d frames (%v), want all 20 from the first", len(dts), dts)
	}
	<-released

	skip, err := g.Claim("skip", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Announce(skip)
	g.Unpublish(skip)

	// Close overtakes a prepare: its run is called at once, ctx done.
	overtaken := make(chan bool, 1)
	g.ConsumePrepared("overtaken", func(s *Stream) func(context.Context) error {
		if s.Name != "racing" {
			return nil
		}
		g.Close()
		return func(ctx context.Context) error {
			overtaken <- ctx.Err() != nil
			return nil
		}
	})
	racing, err := g.Claim("racing", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Announce(racing)
	select {
	case done := <-overtaken:
		if !done {
			t.Error("a run overtaken by Close was given a live context")
		}
	default:
		t.Error("a run overtaken by Close was not called: what its prepare took is held")
	}
	select { // "out" was prepared on "racing" too: its run let go
	case <-released:
	case <-time.After(15 * time.Second):
		t.Error(`the run of "out", overtaken by Close, was not called`)
	}
	// Close has joined every supervised run: "cam"'s error is reported,
	// once, and nothing ran on "skip" (a run there would have failed or
	// been released too).
	if err := errs.get("out"); err == nil || !strings.Contains(err.Error(), "its stream ended") {
		t.Errorf("the run's error reported as %v", err)
	}
	if n := g.ConsumerErrors()["out"]; n != 1 {
		t.Errorf("%d failed runs of \"out\", want 1 (cam's)", n)
	}
	select {
	case n := <-released:
		t.Errorf("a run for %q, which prepare declined", n)
	default:
	}
}
