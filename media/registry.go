package media

import (
	"sync"
)

// Registry maps stream names to live Streams and tells listeners when a stream
// is published. It enforces one publisher per name.
type Registry struct {
	mu        sync.Mutex
	streams   map[string]*Stream
	listeners []func(*Stream)
	closed    bool
}

// NewRegistry makes an empty Registry.
func NewRegistry() *Registry {
	return &Registry{streams: make(map[string]*Stream)}
}

// OnPublish registers fn to be called, on the publisher's goroutine, for every
// stream published from now on. fn must not block: consumers start their own
// goroutine and Subscribe there or in fn.
func (g *Registry) OnPublish(fn func(*Stream)) {
	g.mu.Lock()
	g.listeners = append(g.listeners, fn)
	g.mu.Unlock()
}

// Publish claims name for a new Stream with the given tracks. It returns
// ErrStreamBusy when the name is live, and wraps ErrBadName for a bad name.
// The caller owns the Stream and must call Unpublish when the publisher leaves.
func (g *Registry) Publish(name string, tracks []*Track, onKeyframeRequest func()) (*Stream, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrRegistryClosed
	}
	if _, ok := g.streams[name]; ok {
		g.mu.Unlock()
		return nil, ErrStreamBusy
	}
	s := NewStream(name, tracks, onKeyframeRequest)
	g.streams[name] = s
	ls := append([]func(*Stream){}, g.listeners...)
	g.mu.Unlock()
	for _, fn := range ls {
		fn(s)
	}
	return s, nil
}

// Unpublish closes s and frees its name. Safe to call more than once.
func (g *Registry) Unpublish(s *Stream) {
	g.mu.Lock()
	if g.streams[s.Name] == s {
		delete(g.streams, s.Name)
	}
	g.mu.Unlock()
	s.Close()
}

// Get returns the live stream with that name.
func (g *Registry) Get(name string) (*Stream, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.streams[name]
	return s, ok
}

// List returns the live streams.
func (g *Registry) List() []*Stream {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Stream, 0, len(g.streams))
	for _, s := range g.streams {
		out = append(out, s)
	}
	return out
}

// Close refuses new publishes and ends every live stream.
func (g *Registry) Close() {
	g.mu.Lock()
	g.closed = true
	ss := make([]*Stream, 0, len(g.streams))
	for _, s := range g.streams {
		ss = append(ss, s)
	}
	clear(g.streams)
	g.mu.Unlock()
	for _, s := range ss {
		s.Close()
	}
}
