package media

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// A consumer is what Consume registers: run once per published stream.
type consumer struct {
	kind string
	run  func(ctx context.Context, s *Stream) error
	// queue > 0: ConsumeReader's, subscribed at the announce.
	queue   int
	readRun func(ctx context.Context, r *Reader) error
	// want, when set, says whether the stream is one to run on; asked at
	// the announce, outside the registry's lock (ConsumeReaderWhen).
	want func(*Stream) bool
	// prepare, when set, takes hold of the stream at the announce and
	// returns the run (ConsumePrepared).
	prepare func(*Stream) func(ctx context.Context) error
}

// Consume registers run to be run on every stream published from now on, on
// a goroutine of its own that the Registry owns: started when the stream
// is announced (after the OnPublish listeners, before its first frame is
// written), given a context that ends with the stream (Stream.Context), and
// waited for by Close. A run that returns an error other than the context's
// own, or panics, is reported to the OnConsumerError hooks with kind (which
// names it in logs and metrics); the stream goes on either way. A resumed
// stream is not announced again: its consumers are still running.
func (g *Registry) Consume(kind string, run func(ctx context.Context, s *Stream) error) {
	g.mu.Lock()
	g.consumers = append(g.consumers, consumer{kind: kind, run: run})
	g.mu.Unlock()
}

// ConsumeReader is Consume for a consumer of every frame from the first: its
// Reader (SubscribeSkipping with queueLen, reader kind kind, so falling
// behind skips to the next keyframe and is counted) is subscribed at the
// announce, before the first frame is written, and closed when run
// returns. r.Stream() is the stream. The stream's end comes through r (Read
// returns ErrStreamEnded after the last queued frame, which run returns as
// a normal end); ctx ends only when the Registry closes, which stops the
// run at once (what it still held is its to flush or drop).
func (g *Registry) ConsumeReader(kind string, queueLen int, run func(ctx context.Context, r *Reader) error) {
	g.mu.Lock()
	g.consumers = append(g.consumers, consumer{kind: kind, queue: max(queueLen, 1), readRun: run})
	g.mu.Unlock()
}

// ConsumeReaderWhen is ConsumeReader for the streams want says yes to,
// asked at each announce on the announcing goroutine, outside the
// registry's lock (it must be quick: a rule lookup). A stream it declines
// gets no reader, so no keyframe request and no goroutine.
func (g *Registry) ConsumeReaderWhen(kind string, queueLen int, want func(*Stream) bool, run func(ctx context.Context, r *Reader) error) {
	g.mu.Lock()
	g.consumers = append(g.consumers, consumer{kind: kind, queue: max(queueLen, 1), readRun: run, want: want})
	g.mu.Unlock()
}

// ConsumePrepared is Consume for a consumer that must take hold of a stream
// before its first frame is written, with readers of its own or a derived
// stream (an output that subscribes one reader per destination): prepare
// runs at the announce, on the announcing goroutine and outside the
// registry's lock, and returns the run the Registry then supervises as
// Consume's (its ctx ends with the stream; Close waits for it; its error
// is reported), or nil for a stream it has nothing to do with. prepare
// must be quick: no I/O, no codec opened. A run that was prepared always
// runs: should the Registry close in between, with a context already done,
// so that what prepare took hold of is let go.
func (g *Registry) ConsumePrepared(kind string, prepare func(*Stream) func(ctx context.Context) error) {
	g.mu.Lock()
	g.consumers = append(g.consumers, consumer{kind: kind, prepare: prepare})
	g.mu.Unlock()
}

// OnConsumerError registers fn to be told of every consumer run that failed
// (Consume); it runs on the consumer's goroutine and must not block.
func (g *Registry) OnConsumerError(fn func(kind string, s *Stream, err error)) {
	g.mu.Lock()
	g.consumerErrs = append(g.consumerErrs, fn)
	g.mu.Unlock()
}

// ConsumerErrors returns how many consumer runs failed (an error or a
// panic), by kind, since the Registry was made.
func (g *Registry) ConsumerErrors() map[string]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]uint64, len(g.failures))
	for k, n := range g.failures {
		out[k] = n
	}
	return out
}

// wanted is the consumers of cs that run on s (their want, if any, says
// so; a prepared one's prepare runs here and gives its run, or declines);
// called without g.mu.
func wanted(cs []consumer, s *Stream) []consumer {
	out := cs[:0]
	for _, c := range cs {
		if c.prepare != nil {
			run := c.prepare(s)
			if run == nil {
				continue
			}
			c.run = func(ctx context.Context, _ *Stream) error { return run(ctx) }
		}
		if c.want == nil || c.want(s) {
			out = append(out, c)
		}
	}
	return out
}

// startConsumers starts the consumer runs cs on s, unless the registry is
// closing (Close ends s then): it then returns the prepared ones, which the
// caller runs once g.mu is released (runDone). g.mu is held.
func (g *Registry) startConsumers(s *Stream, cs []consumer) (orphans []consumer) {
	if g.closed {
		for _, c := range cs {
			if c.prepare != nil {
				orphans = append(orphans, c)
			}
		}
		return orphans
	}
	for _, c := range cs {
		if c.readRun != nil {
			r := s.SubscribeSkipping(c.kind, c.queue)
			c.run = func(context.Context, *Stream) error {
				defer r.Close()
				if err := c.readRun(g.ctx, r); !errors.Is(err, ErrStreamEnded) {
					return err
				}
				return nil
			}
		}
		g.running.Add(1)
		go g.supervise(c, s)
	}
	return nil
}

// runDone runs prepared consumers that the Registry's Close overtook, at
// once and with a context already done, so they let go of what their
// prepare took hold of. Called without g.mu.
func runDone(cs []consumer, s *Stream) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range cs {
		_ = c.run(ctx, s)
	}
}

// supervise runs c on s and reports how it failed.
func (g *Registry) supervise(c consumer, s *Stream) {
	defer g.running.Done()
	ctx := s.Context()
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		return c.run(ctx, s)
	}()
	if err == nil || errors.Is(err, context.Canceled) && (ctx.Err() != nil || g.ctx.Err() != nil) {
		return // ended as asked
	}
	g.mu.Lock()
	if g.failures == nil {
		g.failures = map[string]uint64{}
	}
	g.failures[c.kind]++
	hooks := append([]func(string, *Stream, error){}, g.consumerErrs...)
	g.mu.Unlock()
	for _, fn := range hooks {
		fn(c.kind, s, err)
	}
}

// Context returns a context that is done once the stream has ended (Done):
// what a consumer's goroutine runs under. It costs no goroutine.
func (s *Stream) Context() context.Context { return streamContext{s} }

// streamContext is Stream.Context.
type streamContext struct{ s *Stream }

func (streamContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c streamContext) Done() <-chan struct{}     { return c.s.done }
func (streamContext) Value(any) any               { return nil }

// Err is context.Canceled once the stream has ended.
func (c streamContext) Err() error {
	select {
	case <-c.s.done:
		return context.Canceled
	default:
		return nil
	}
}
