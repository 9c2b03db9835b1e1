package transmux_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// runSink is one run's sink: what it got and how it ended.
type runSink struct {
	mu    sync.Mutex
	segs  int
	err   error
	ended chan struct{}
}

func (k *runSink) OnInit(*transmux.Init) {}
func (k *runSink) OnPart(*transmux.Part) {}
func (k *runSink) OnSegment(*transmux.Segment) {
	k.mu.Lock()
	k.segs++
	k.mu.Unlock()
}
func (k *runSink) OnEnd(err error) {
	k.mu.Lock()
	k.err = err
	k.mu.Unlock()
	close(k.ended)
}

// demandRig is a Service on a registry with a counting Source (standing in
// for the Opus→AAC stage) and a consumer that keeps every run's sink.
type demandRig struct {
	reg     *media.Registry
	sv      *transmux.Service
	sources atomic.Int32 // Source acquired and not released: "transcodes running"
	mu      sync.Mutex
	runs    []*runSink
}

func newDemandRig(t *testing.T, idle time.Duration) *demandRig {
	t.Helper()
	rg := &demandRig{reg: media.NewRegistry()}
	rg.sv = transmux.NewService(transmux.Settings{ReaderQueue: 4096, Idle: idle}, nil)
	rg.sv.SetSource(func(s *media.Stream) (*media.Stream, func(), error) {
		rg.sources.Add(1)
		return s, func() { rg.sources.Add(-1) }, nil
	})
	rg.sv.AddConsumer(func(*media.Stream) transmux.Sink {
		k := &runSink{ended: make(chan struct{})}
		rg.mu.Lock()
		rg.runs = append(rg.runs, k)
		rg.mu.Unlock()
		return k
	})
	rg.sv.Attach(rg.reg)
	t.Cleanup(func() {
		rg.reg.Close()
		rg.sv.Close()
		if n := rg.sources.Load(); n != 0 {
			t.Errorf("%d sources still acquired after Close", n)
		}
	})
	return rg
}

func (rg *demandRig) run(i int) *runSink {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if i >= len(rg.runs) {
		return nil
	}
	return rg.runs[i]
}

func (rg *demandRig) nruns() int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return len(rg.runs)
}

// eventually polls cond for up to 10 s (a bound for a loaded machine, not
// a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func loadFx(t *testing.T) *transmuxtest.Fixture {
	t.Helper()
	fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/av.ogg", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// watch is one player request answered at once.
func watch(sv *transmux.Service, name string) error {
	v, err := sv.Watch(context.Background(), name)
	v.Done()
	return err
}

// A stream nobody watches is not packaged: no transmuxer, no Source (no
// transcode), no reader. The first Watch starts it and asks the publisher
// for a keyframe; requests keep it; once they stop for the idle time it
// stops, its sinks told ErrIdle and the Source released; a later Watch
// starts a new run.
func TestServiceWatchStartsAndIdleStops(t *testing.T) {
	const idle = 300 * time.Millisecond
	rg := newDemandRig(t, idle)
	fx := loadFx(t)
	var keyframes atomic.Int32
	s, err := rg.reg.Publish("cam", fx.Tracks(), func() { keyframes.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if rg.sv.Running() != 0 || rg.sources.Load() != 0 || s.Readers() != 0 || rg.nruns() != 0 {
		t.Fatalf("unwatched stream: running %d, sources %d, readers %d, runs %d",
			rg.sv.Running(), rg.sources.Load(), s.Readers(), rg.nruns())
	}
	if _, err := rg.sv.Watch(context.Background(), "nobody"); !errors.Is(err, transmux.ErrNotLive) {
		t.Fatalf("Watch of an unknown stream: %v, want ErrNotLive", err)
	}

	if err := watch(rg.sv, "cam"); err != nil {
		t.Fatal(err)
	}
	if rg.sv.Running() != 1 || rg.sources.Load() != 1 || s.Readers() != 1 || rg.nruns() != 1 || keyframes.Load() == 0 {
		t.Fatalf("watched: running %d, sources %d, readers %d, runs %d, keyframe requests %d",
			rg.sv.Running(), rg.sources.Load(), s.Readers(), rg.nruns(), keyframes.Load())
	}
	for _, f := range fx.Frames {
		s.Write(f)
	}
	eventually(t, "segments of the watched stream", func() bool {
		k := rg.run(0)
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.segs >= 3
	})

	// A player that keeps asking keeps it: requests at a tenth of the idle
	// time for three idle times.
	for range 30 {
		if err := watch(rg.sv, "cam"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle / 10)
	}
	if rg.nruns() != 1 || rg.sv.Running() != 1 {
		t.Fatalf("a player kept asking: %d runs, running %d; want the first run going on", rg.nruns(), rg.sv.Running())
	}

	// The player leaves.
	first := rg.run(0)
	<-first.ended
	if !errors.Is(first.err, transmux.ErrIdle) {
		t.Fatalf("idle stop told the sink %v, want ErrIdle", first.err)
	}
	eventually(t, "the idle stop released everything", func() bool {
		return rg.sv.Running() == 0 && rg.sources.Load() == 0 && s.Readers() == 0
	})

	// A later player starts it again.
	if err := watch(rg.sv, "cam"); err != nil {
		t.Fatal(err)
	}
	if rg.nruns() != 2 || rg.sv.Running() != 1 || rg.sources.Load() != 1 {
		t.Fatalf("second player: %d runs, running %d, sources %d", rg.nruns(), rg.sv.Running(), rg.sources.Load())
	}
	rg.reg.Unpublish(s)
	<-rg.run(1).ended
	if err := rg.run(1).err; err != nil {
		t.Fatalf("stream end told the sink %v, want nil", err)
	}
	eventually(t, "the ended stream's run done", func() bool { return rg.sv.Running() == 0 && rg.sources.Load() == 0 })
	eventually(t, "Watch of the ended stream says ErrNotLive", func() bool {
		return errors.Is(watch(rg.sv, "cam"), transmux.ErrNotLive)
	})
	if rg.nruns() != 2 {
		t.Fatalf("%d runs: a Watch after the end started one", rg.nruns())
	}
}

// Acquire keeps a stream packaged without requests, past the idle time,
// until its release; a player's lease and an Acquire add up.
func TestServiceAcquireHoldsPastIdle(t *testing.T) {
	const idle = 200 * time.Millisecond
	rg := newDemandRig(t, idle)
	fx := loadFx(t)
	s, err := rg.reg.Publish("rec", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rg.sv.Acquire("nobody"); !errors.Is(err, transmux.ErrNotLive) {
		t.Fatalf("Acquire of an unknown stream: %v", err)
	}
	release, err := rg.sv.Acquire("rec")
	if err != nil {
		t.Fatal(err)
	}
	if err := watch(rg.sv, "rec"); err != nil {
		t.Fatal(err)
	}
	if rg.sv.Running() != 1 || rg.sources.Load() != 1 || rg.nruns() != 1 {
		t.Fatalf("acquired and watched: running %d, sources %d, runs %d", rg.sv.Running(), rg.sources.Load(), rg.nruns())
	}
	time.Sleep(3 * idle) // the player's lease lapses; the Acquire holds
	if rg.sv.Running() != 1 || rg.nruns() != 1 {
		t.Fatalf("past the idle time with an Acquire held: running %d, runs %d", rg.sv.Running(), rg.nruns())
	}
	release()
	release() // a second call is a no-op
	<-rg.run(0).ended
	if err := rg.run(0).err; !errors.Is(err, transmux.ErrIdle) {
		t.Fatalf("release told the sink %v, want ErrIdle", err)
	}
	eventually(t, "release stopped the run", func() bool { return rg.sv.Running() == 0 && rg.sources.Load() == 0 })
	rg.reg.Unpublish(s)
	release() // after the end: still a no-op
}

// A pinned stream (a recording or origin rule) is packaged from its publish,
// missing no frame, to its end, with no request at all.
func TestServicePinnedFromPublish(t *testing.T) {
	const idle = 200 * time.Millisecond
	rg := newDemandRig(t, idle)
	rg.sv.Pin(func(s *media.Stream) bool { return s.Name == "always" })
	fx := loadFx(t)
	s, err := rg.reg.Publish("always", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rg.sv.Running() != 1 || rg.nruns() != 1 || s.Readers() != 1 {
		t.Fatalf("pinned stream at publish: running %d, runs %d, readers %d", rg.sv.Running(), rg.nruns(), s.Readers())
	}
	other, err := rg.reg.Publish("other", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.Readers() != 0 || rg.nruns() != 1 {
		t.Fatalf("an unpinned stream was packaged: readers %d, runs %d", other.Readers(), rg.nruns())
	}
	for _, f := range fx.Frames {
		s.Write(f)
	}
	time.Sleep(3 * idle)
	if rg.sv.Running() != 1 {
		t.Fatalf("pinned stream stopped without a player: running %d", rg.sv.Running())
	}
	rg.reg.Unpublish(s)
	k := rg.run(0)
	<-k.ended
	if k.err != nil {
		t.Fatalf("pinned stream's end: %v", k.err)
	}
	// Every frame from the first was there: 10 s of media at 2 s segments.
	if k.segs < 4 {
		t.Fatalf("%d segments from a 10 s publish packaged from its start", k.segs)
	}
	eventually(t, "the pinned run done", func() bool { return rg.sv.Running() == 0 && rg.sources.Load() == 0 })
}

// A player that asks while the publisher connects (its name claimed, no
// frame yet) waits, and its run starts before the first frame is written:
// it gets the stream from its first keyframe, not from the next one. Its
// lease then lapses like any other.
func TestServiceWatchWhileConnecting(t *testing.T) {
	const idle = 200 * time.Millisecond
	rg := newDemandRig(t, idle)
	fx := loadFx(t)
	s, err := rg.reg.Claim("early", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() { answered <- watch(rg.sv, "early") }()
	eventually(t, "the player waiting for the first frame", func() bool { return rg.sv.Awaiting() == 1 })
	if rg.nruns() != 0 || s.Readers() != 0 {
		t.Fatalf("before the first frame: runs %d, readers %d", rg.nruns(), s.Readers())
	}
	rg.reg.Announce(s) // what ingest does with the first frame, before writing it
	if rg.sv.Running() != 1 || rg.nruns() != 1 || s.Readers() != 1 {
		t.Fatalf("announced with a player waiting: running %d, runs %d, readers %d; want the run subscribed before the first write",
			rg.sv.Running(), rg.nruns(), s.Readers())
	}
	if err := <-answered; err != nil {
		t.Fatalf("the waiting player: %v", err)
	}
	if n := rg.sv.Awaiting(); n != 0 {
		t.Fatalf("%d players still counted as waiting", n)
	}
	// A request in flight holds the lease while the frames go in.
	v, err := rg.sv.Watch(context.Background(), "early")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx.Frames {
		s.Write(f)
	}
	k := rg.run(0)
	// Every segment from the first keyframe: 10 s of media, 2 s segments.
	eventually(t, "the segments from the first keyframe", func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.segs >= 4
	})
	if rg.nruns() != 1 {
		t.Fatalf("%d runs; want the one started at the announce", rg.nruns())
	}
	// The lease lapses: the run stops for idleness.
	v.Done()
	<-k.ended
	if !errors.Is(k.err, transmux.ErrIdle) {
		t.Fatalf("the lapsed lease told the sink %v, want ErrIdle", k.err)
	}
	eventually(t, "the idle run released everything", func() bool { return rg.sv.Running() == 0 && rg.sources.Load() == 0 })
	rg.reg.Unpublish(s)
}

// A request still being answered (a first playlist waiting for its first
// segment) holds the lease however long it takes; the idle time counts from
// its answer.
func TestServiceWatchInFlightHolds(t *testing.T) {
	const idle = 200 * time.Millisecond
	rg := newDemandRig(t, idle)
	fx := loadFx(t)
	if _, err := rg.reg.Publish("slow", fx.Tracks(), nil); err != nil {
		t.Fatal(err)
	}
	v, err := rg.sv.Watch(context.Background(), "slow")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * idle)
	if rg.sv.Running() != 1 || rg.nruns() != 1 {
		t.Fatalf("a request in flight past the idle time: running %d, runs %d", rg.sv.Running(), rg.nruns())
	}
	v.Done()
	<-rg.run(0).ended
	eventually(t, "the stop after the answer", func() bool { return rg.sv.Running() == 0 && rg.sources.Load() == 0 })
}

// A player's request on a stream already packaged renews its lease without
// allocating: it runs on every playlist, part and segment request.
func TestServiceWatchRenewalAllocatesNothing(t *testing.T) {
	rg := newDemandRig(t, time.Minute)
	fx := loadFx(t)
	if _, err := rg.reg.Publish("hot", fx.Tracks(), nil); err != nil {
		t.Fatal(err)
	}
	if err := watch(rg.sv, "hot"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		v, _ := rg.sv.Watch(ctx, "hot")
		v.Done()
	}); n != 0 {
		t.Fatalf("a lease renewal allocates %.1f times", n)
	}
}
