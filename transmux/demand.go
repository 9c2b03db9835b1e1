package transmux

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/media"
)

// demand is one published stream's packaging: what wants it, and the run
// (transmuxer, Source, sinks) that serves it. Its goroutine, supervise,
// owns the player lease and the run, and alone starts and stops runs; other
// goroutines ask it through cmds. Two things are atomics instead, so that
// they never wait on that goroutine: a player's renewal of a lease already
// held (touched, playing: the request path) and a release (pins, then a
// nudge), which a Sink may call while the goroutine waits for its run.
type demand struct {
	sv    *Service
	s     *media.Stream
	cmds  chan demandCmd
	nudge chan struct{} // cap 1: pins went down, look again
	done  chan struct{} // closed when supervise has returned

	pins     atomic.Int64 // Pin rule (1 for the stream's life) + Acquires not released
	touched  atomic.Int64 // the last player request's start or end, Service.clock
	inflight atomic.Int64 // player requests not answered yet (a first playlist waits)
	playing  atomic.Bool  // the player lease is held: Watch need not ask
}

type demandOp int

const (
	opStart demandOp = iota + 1 // an Acquire: pins already counts it
	opWatch
)

type demandCmd struct {
	op    demandOp
	reply chan error
}

// run is one transmuxer of a stream, from a start to its end.
type run struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once the transmuxer, its reader and Source are done
	idle   atomic.Bool   // stopped for want of demand: the sinks get ErrIdle
}

func newDemand(sv *Service, s *media.Stream) *demand {
	return &demand{sv: sv, s: s, cmds: make(chan demandCmd), nudge: make(chan struct{}, 1), done: make(chan struct{})}
}

// clock is a monotonic time for the lease, in ns since the Service started.
func (sv *Service) clock() int64 { return int64(time.Since(sv.base)) }

// Watch is a player's request for the stream name (a playlist, MPD, init
// segment, segment or part). It starts the stream's packaging if none runs
// and returns once it has started: the sinks exist, and the first segment
// follows once the keyframe asked for has come and been cut. Each request
// renews the player lease, from when it comes to when it is answered
// (Viewing.Done); the packaging stops Settings.Idle after the last one
// unless something else still wants it. It returns ErrNotLive for a
// name that is not published (after waiting up to AwaitPublish for one whose
// publisher is connecting: media.Registry.Await), ctx's error if ctx ends
// before the stream's goroutine takes the request, or the start's error;
// Done is needed only when err is nil (and harmless otherwise).
//
// A request on a running lease costs a few atomic operations and no
// allocation.
func (sv *Service) Watch(ctx context.Context, name string) (Viewing, error) {
	d := sv.lookup(name)
	if d == nil {
		// A player that comes while the publisher connects waits for the
		// stream's first frame (media.Registry.Await), bounded. It is
		// counted while it waits, so that publish starts the run before
		// that first frame is written: the player gets the stream from
		// its first keyframe, as it would had it come a moment later.
		sv.mu.Lock()
		reg := sv.reg
		if reg != nil {
			sv.awaiting[name]++
		}
		sv.mu.Unlock()
		if reg == nil {
			return Viewing{}, ErrNotLive
		}
		actx, cancel := context.WithTimeout(ctx, AwaitPublish)
		_, ok := reg.Await(actx, name)
		cancel()
		sv.mu.Lock()
		if sv.awaiting[name]--; sv.awaiting[name] <= 0 {
			delete(sv.awaiting, name)
		}
		sv.mu.Unlock()
		if d = sv.lookup(name); !ok || d == nil {
			return Viewing{}, ErrNotLive
		}
	}
	d.inflight.Add(1)
	d.touched.Store(sv.clock())
	if d.playing.Load() {
		return Viewing{d}, nil
	}
	if err := d.send(ctx, opWatch); err != nil {
		d.inflight.Add(-1)
		return Viewing{}, err
	}
	return Viewing{d}, nil
}

// Viewing is one player request in progress (Service.Watch).
type Viewing struct{ d *demand }

// Done says the request has been answered: the idle time counts from now.
func (v Viewing) Done() {
	if v.d == nil {
		return
	}
	v.d.touched.Store(v.d.sv.clock())
	v.d.inflight.Add(-1)
}

// Acquire wants the stream name packaged until release is called (an API
// recording). It starts the packaging if none runs and returns once it has
// started; ErrNotLive for a name that is not published. release never
// blocks (a Sink may call it, under its own lock), may be called more than
// once, and after the stream has ended; the stop it may cause happens on the
// stream's goroutine.
func (sv *Service) Acquire(name string) (release func(), err error) {
	d := sv.lookup(name)
	if d == nil {
		return nil, ErrNotLive
	}
	d.pins.Add(1)
	if err := d.send(context.Background(), opStart); err != nil {
		d.release()
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(d.release) }, nil
}

func (d *demand) release() {
	d.pins.Add(-1)
	select {
	case d.nudge <- struct{}{}:
	default: // a nudge is pending already
	}
}

// send hands c to the stream's goroutine and waits for its answer. Once
// taken, a command is always answered.
func (d *demand) send(ctx context.Context, op demandOp) error {
	c := demandCmd{op: op, reply: make(chan error, 1)}
	select {
	case d.cmds <- c:
	case <-d.done:
		return ErrNotLive
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-c.reply
}

// supervise owns the stream's demand until the stream has ended and its last
// run is done (or the Service closes). cur is the run publish started for a
// pinned stream (pins is 1 then, for the stream's life) or for players
// waiting for the stream (watched: the player lease is held from the start,
// playing and touched are set).
func (d *demand) supervise(cur *run, watched bool) {
	sv := d.sv
	defer sv.wg.Done()
	watching, ended := watched, false
	lease := time.NewTimer(sv.idle)
	var leaseC <-chan time.Time
	if watched {
		leaseC = lease.C
	} else {
		lease.Stop()
	}
	defer lease.Stop()
	streamDone := d.s.Done()
	for !ended || cur != nil {
		var runDone <-chan struct{}
		if cur != nil {
			runDone = cur.done
		}
		select {
		case <-d.nudge:
			if d.pins.Load() <= 0 && !watching {
				cur = stop(cur, true)
			}
		case c := <-d.cmds:
			if ended {
				c.reply <- ErrNotLive
				continue
			}
			if cur == nil {
				var err error
				if cur, err = d.start(); err != nil {
					c.reply <- err
					continue
				}
			}
			if c.op == opWatch && !watching {
				watching, leaseC = true, lease.C
				d.playing.Store(true)
				lease.Reset(sv.idle)
			}
			c.reply <- nil
		case <-leaseC:
			last := d.touched.Load()
			if d.inflight.Load() > 0 {
				lease.Reset(sv.idle) // a request is being answered
				continue
			}
			if left := sv.idle - time.Duration(sv.clock()-last); left > 0 {
				lease.Reset(left)
				continue
			}
			// Let go, then look again: a request that renewed the lease
			// after the loads above either shows here or finds playing false
			// and asks (opWatch), which this goroutine answers after the stop.
			d.playing.Store(false)
			if d.touched.Load() != last || d.inflight.Load() > 0 {
				d.playing.Store(true)
				lease.Reset(sv.idle)
				continue
			}
			watching, leaseC = false, nil
			if d.pins.Load() <= 0 {
				cur = stop(cur, true)
			}
		case <-runDone:
			// Ended by itself: the stream ended and was drained, or the run
			// failed. A later request starts a new one.
			cur = nil
			if watching {
				watching, leaseC = false, nil
				lease.Stop()
				d.playing.Store(false)
			}
		case <-streamDone:
			ended, streamDone = true, nil
		case <-sv.ctx.Done():
			cur = stop(cur, false)
			ended = true
		}
	}
	d.playing.Store(false)
	sv.forget(d)
	close(d.done)
}

// stop ends r and waits for it; idle tells the sinks why (ErrIdle).
func stop(r *run, idle bool) *run {
	if r == nil {
		return nil
	}
	r.idle.Store(idle)
	r.cancel()
	<-r.done
	return nil
}

// start makes a run: Source, sinks, transmuxer, reader and its goroutine,
// which the stream's goroutine (or publish, before handing it over) owns.
// Subscribe asks the publisher for a keyframe, so a run started mid-stream
// begins within a round trip rather than a whole keyframe interval.
func (d *demand) start() (*run, error) {
	sv := d.sv
	select {
	case <-d.s.Done():
		return nil, ErrNotLive // ended; supervise has not seen it yet
	default:
	}
	src, consumers := sv.snapshot()
	s, release := d.s, func() {}
	if src != nil {
		ds, rel, err := src(d.s)
		if err != nil {
			sv.log.Warn("transmux: stream source failed; packaging the stream as published", "stream", d.s.Name, "err", err)
		} else {
			s, release = ds, rel
		}
	}
	var sinks []Sink
	for _, c := range consumers {
		if k := c(s); k != nil {
			sinks = append(sinks, k)
		}
	}
	if len(sinks) == 0 {
		release()
		return nil, ErrNoConsumers
	}
	sink := newMultiSink(sv, d.s.Name, sinks)
	rn := &run{done: make(chan struct{})}
	tm, err := New(sv.set, s.Tracks, endSink{Sink: sink, run: rn})
	if err != nil {
		sink.OnEnd(err)
		release()
		return nil, err
	}
	ctx, cancel := context.WithCancel(sv.ctx)
	rn.cancel = cancel
	r := s.SubscribeSkipping("transmux", sv.set.ReaderQueue)
	if s != d.s {
		d.s.RequestKeyframe() // a Source's stream may not forward the request
	}
	sv.countRunning(1)
	go func() {
		defer close(rn.done)
		defer cancel()
		err := tm.Run(ctx, r)
		r.Close()
		release()
		sv.countRunning(-1)
		if err != nil && !errors.Is(err, context.Canceled) {
			sv.log.Warn("transmux: stream stopped", "stream", d.s.Name, "err", err)
		}
		if n := tm.Resyncs(); n > 0 {
			sv.log.Warn("transmux: fell behind the publisher and resynced at a keyframe", "stream", d.s.Name, "times", n)
		}
	}()
	return rn, nil
}

// endSink tells the sinks ErrIdle when the run was stopped for want of
// demand, so a packager drops the stream's state rather than ending its
// playlist for players that are gone.
type endSink struct {
	Sink
	run *run
}

func (e endSink) OnEnd(err error) {
	if e.run.idle.Load() {
		err = ErrIdle
	}
	e.Sink.OnEnd(err)
}
