package media

import (
	"context"
	"sync"
	"time"
)

// RegistrySettings configures a Registry.
type RegistrySettings struct {
	// ReconnectWindow is how long Hold keeps a stream whose publisher left,
	// so that a publish of the same name continues it (same Stream, same
	// readers, same outputs). Default 0: Hold ends the stream at once, like
	// Unpublish.
	ReconnectWindow time.Duration
}

// Registry maps stream names to live Streams and tells listeners when a stream
// is published. It enforces one publisher per name.
//
// A stream whose publisher dropped can be held (Hold) for the reconnect
// window: its name stays taken, its readers stay subscribed and see no
// frames, and a Publish of the same name with the same tracks resumes it.
// The registry owns the held state and its expiry timers (under mu); Close
// stops the timers and ends the held streams with the live ones.
type Registry struct {
	window time.Duration

	mu        sync.Mutex
	streams   map[string]*Stream
	held      map[*Stream]*time.Timer // expiry of each held stream
	pending   map[*Stream]*claim      // claimed, not yet public (Claim)
	listeners []func(*Stream)
	watchers  []func(*Stream, State)
	closed    bool
	timers    sync.WaitGroup // expiry callbacks not yet stopped or run

	consumers    []consumer // Consume, run on every announced stream
	consumerErrs []func(kind string, s *Stream, err error)
	running      sync.WaitGroup    // consumer runs not yet returned
	failures     map[string]uint64 // failed consumer runs, by kind
	// ctx ends at Close: the ConsumeReader runs' context.
	ctx    context.Context
	cancel context.CancelFunc
}

// NewRegistry makes an empty Registry with no reconnect window.
func NewRegistry() *Registry { return NewRegistryWith(RegistrySettings{}) }

// NewRegistryWith makes an empty Registry with settings s.
func NewRegistryWith(s RegistrySettings) *Registry {
	ctx, cancel := context.WithCancel(context.Background())
	return &Registry{
		ctx: ctx, cancel: cancel,
		window:  max(s.ReconnectWindow, 0),
		streams: make(map[string]*Stream),
		held:    make(map[*Stream]*time.Timer),
		pending: make(map[*Stream]*claim),
	}
}

// ReconnectWindow returns the configured window.
func (g *Registry) ReconnectWindow() time.Duration { return g.window }

// OnPublish registers fn to be called, on the publisher's goroutine, for every
// stream published from now on. fn must not block: consumers start their own
// goroutine and Subscribe there or in fn. A resumed stream is not published
// again: its consumers are still attached.
func (g *Registry) OnPublish(fn func(*Stream)) {
	g.mu.Lock()
	g.listeners = append(g.listeners, fn)
	g.mu.Unlock()
}

// OnStateChange registers fn to be called when a stream is interrupted
// (Hold: StateInterrupted) and when it is resumed (StateLive). A stream's
// start is OnPublish, its end is Stream.Done. fn runs on the goroutine of the
// Hold or Publish call and must not block.
func (g *Registry) OnStateChange(fn func(*Stream, State)) {
	g.mu.Lock()
	g.watchers = append(g.watchers, fn)
	g.mu.Unlock()
}

// Publish claims name for a new Stream with the given tracks. It returns
// ErrStreamBusy when the name is live, and wraps ErrBadName for a bad name.
// The caller owns the Stream and must call Unpublish or Hold when the
// publisher leaves.
//
// When name is held (Hold) and tracks match the held stream's (kinds,
// codecs, clock rates, channels), Publish resumes it: it returns the same
// Stream, with onKeyframeRequest as its keyframe hook, its own Tracks (the
// caller writes those, not the ones it passed), Stream.ResumeOrigin set and
// the next frame of each track marked Discontinuity; OnPublish listeners are
// not called again. With other tracks the held stream ends and a new one is
// published.
func (g *Registry) Publish(name string, tracks []*Track, onKeyframeRequest func()) (*Stream, error) {
	s, err := g.Claim(name, tracks, onKeyframeRequest)
	if err != nil {
		return nil, err
	}
	g.Announce(s)
	return s, nil
}

// Claim is the first half of Publish, for a publisher that may still fail
// before it has media (a WHIP offer being negotiated): it takes name, or
// resumes a held stream, exactly as Publish does, but a new Stream stays
// private until Announce: Get and List do not show it and the OnPublish
// listeners do not see it, so a publish that never carried media starts no
// consumers and no stream.started. Unpublish (or Hold) of a stream never
// announced frees the name and tells no one. A resumed stream needs no
// Announce (its consumers are attached); calling it is harmless.
func (g *Registry) Claim(name string, tracks []*Track, onKeyframeRequest func()) (*Stream, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrRegistryClosed
	}
	var ended *Stream
	if old, ok := g.streams[name]; ok {
		timer, held := g.held[old]
		if !held {
			g.mu.Unlock()
			return nil, ErrStreamBusy
		}
		g.stopTimer(old, timer)
		if sameTracks(old.Tracks, tracks) {
			now := time.Now()
			old.resume(onKeyframeRequest, now)
			ws := append([]func(*Stream, State){}, g.watchers...)
			g.mu.Unlock()
			for _, fn := range ws {
				fn(old, StateLive)
			}
			return old, nil
		}
		delete(g.streams, name)
		ended = old
	}
	s := NewStream(name, tracks, onKeyframeRequest)
	g.streams[name] = s
	g.pending[s] = &claim{settled: make(chan struct{})}
	g.mu.Unlock()
	if ended != nil {
		ended.Close()
	}
	return s, nil
}

// Announce calls the OnPublish listeners for a stream from Claim, on the
// caller's goroutine (before the caller writes the first frame, so that
// consumers see it), and then makes it public: once Get finds a stream, its
// consumers are attached (a player asking at that moment finds the
// packager). It does nothing for a stream that is announced already,
// resumed, or no longer registered.
func (g *Registry) Announce(s *Stream) {
	g.mu.Lock()
	c, ok := g.pending[s]
	if !ok || c.announcing || g.streams[s.Name] != s {
		g.mu.Unlock()
		return
	}
	c.announcing = true
	ls := append([]func(*Stream){}, g.listeners...)
	cs := append([]consumer{}, g.consumers...)
	g.mu.Unlock()
	for _, fn := range ls {
		fn(s)
	}
	cs = wanted(cs, s)
	g.mu.Lock()
	orphans := g.startConsumers(s, cs)
	g.settle(s)
	g.mu.Unlock()
	runDone(orphans, s)
}

// claim is a stream between Claim and Announce (or its end).
type claim struct {
	announcing bool          // Announce is running the listeners
	settled    chan struct{} // closed when the stream goes public or away
}

// settle ends s's claim, if it has one: public now, or gone. g.mu is held.
func (g *Registry) settle(s *Stream) {
	if c, ok := g.pending[s]; ok {
		delete(g.pending, s)
		close(c.settled)
	}
}

// Await is Get for a consumer that may arrive between a publisher's Claim
// and its first frame (a player opening the link it was given as the
// publisher connects): for a name that is claimed and not yet public it
// waits until the stream is announced (then returns it), ends, or ctx ends.
// A name nobody claimed returns at once.
func (g *Registry) Await(ctx context.Context, name string) (*Stream, bool) {
	g.mu.Lock()
	s, ok := g.streams[name]
	c, private := g.pending[s]
	g.mu.Unlock()
	if !ok || !private {
		return s, ok
	}
	select {
	case <-c.settled:
		return g.Get(name)
	case <-ctx.Done():
		return nil, false
	}
}

// Hold is Unpublish for a publisher that dropped and may come back: the
// stream stays registered, interrupted, for the reconnect window, and ends
// (as Unpublish) when the window passes without a Publish of its name.
// reason says why the publisher left (events, API). With no window, or for
// a stream that is not live in this registry, Hold is Unpublish.
func (g *Registry) Hold(s *Stream, reason string) {
	g.mu.Lock()
	if _, ok := g.held[s]; ok {
		g.mu.Unlock()
		return // already held: the first window runs
	}
	_, private := g.pending[s]
	if g.closed || g.window <= 0 || g.streams[s.Name] != s || private {
		g.mu.Unlock()
		g.Unpublish(s)
		return
	}
	if !s.interrupt(reason, time.Now()) {
		g.mu.Unlock()
		g.Unpublish(s)
		return
	}
	g.timers.Add(1)
	g.held[s] = time.AfterFunc(g.window, func() {
		defer g.timers.Done()
		g.expire(s)
	})
	ws := append([]func(*Stream, State){}, g.watchers...)
	g.mu.Unlock()
	for _, fn := range ws {
		fn(s, StateInterrupted)
	}
}

// expire ends s if it is still held when its window has passed.
func (g *Registry) expire(s *Stream) {
	g.mu.Lock()
	if _, ok := g.held[s]; !ok {
		g.mu.Unlock()
		return // resumed, unpublished or closed meanwhile
	}
	delete(g.held, s)
	if g.streams[s.Name] == s {
		delete(g.streams, s.Name)
	}
	g.mu.Unlock()
	s.Close()
}

// stopTimer forgets s's hold; g.mu is held. A timer stopped before it fired
// will never run its callback, so its WaitGroup count is released here.
func (g *Registry) stopTimer(s *Stream, t *time.Timer) {
	delete(g.held, s)
	if t != nil && t.Stop() {
		g.timers.Done()
	}
}

// Unpublish closes s and frees its name, held or not. Safe to call more than
// once.
func (g *Registry) Unpublish(s *Stream) {
	g.mu.Lock()
	if t, ok := g.held[s]; ok {
		g.stopTimer(s, t)
	}
	if g.streams[s.Name] == s {
		delete(g.streams, s.Name)
	}
	g.settle(s)
	g.mu.Unlock()
	s.Close()
}

// Get returns the stream with that name, live or held; not one claimed and
// not yet announced.
func (g *Registry) Get(name string) (*Stream, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.streams[name]
	if _, private := g.pending[s]; ok && private {
		return nil, false
	}
	return s, ok
}

// List returns the streams, live and held (Stream.State tells them apart),
// without the ones claimed and not yet announced.
func (g *Registry) List() []*Stream {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Stream, 0, len(g.streams))
	for _, s := range g.streams {
		if _, private := g.pending[s]; !private {
			out = append(out, s)
		}
	}
	return out
}

// Close refuses new publishes, stops the reconnect windows and ends every
// stream, live or held. It returns once no expiry callback and no consumer
// run (Consume) is left.
func (g *Registry) Close() {
	g.mu.Lock()
	g.closed = true
	ss := make([]*Stream, 0, len(g.streams))
	for _, s := range g.streams {
		ss = append(ss, s)
	}
	for s, t := range g.held {
		g.stopTimer(s, t)
	}
	clear(g.streams)
	for s := range g.pending {
		g.settle(s)
	}
	g.mu.Unlock()
	for _, s := range ss {
		s.Close()
	}
	g.timers.Wait()
	g.cancel()
	g.running.Wait()
}
