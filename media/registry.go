package media

import (
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
	listeners []func(*Stream)
	watchers  []func(*Stream, State)
	closed    bool
	timers    sync.WaitGroup // expiry callbacks not yet stopped or run
}

// NewRegistry makes an empty Registry with no reconnect window.
func NewRegistry() *Registry { return NewRegistryWith(RegistrySettings{}) }

// NewRegistryWith makes an empty Registry with settings s.
func NewRegistryWith(s RegistrySettings) *Registry {
	return &Registry{
		window:  max(s.ReconnectWindow, 0),
		streams: make(map[string]*Stream),
		held:    make(map[*Stream]*time.Timer),
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
	ls := append([]func(*Stream){}, g.listeners...)
	g.mu.Unlock()
	if ended != nil {
		ended.Close()
	}
	for _, fn := range ls {
		fn(s)
	}
	return s, nil
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
	if g.closed || g.window <= 0 || g.streams[s.Name] != s {
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
	g.mu.Unlock()
	s.Close()
}

// Get returns the stream with that name, live or held.
func (g *Registry) Get(name string) (*Stream, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.streams[name]
	return s, ok
}

// List returns the streams, live and held (Stream.State tells them apart).
func (g *Registry) List() []*Stream {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Stream, 0, len(g.streams))
	for _, s := range g.streams {
		out = append(out, s)
	}
	return out
}

// Close refuses new publishes, stops the reconnect windows and ends every
// stream, live or held. It returns once no expiry callback runs.
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
	g.mu.Unlock()
	for _, s := range ss {
		s.Close()
	}
	g.timers.Wait()
}
