package packager

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// packaged is what a stream's HLS or DASH state gives the registry.
type packaged interface {
	comparable
	streamName() string
	// isEnded reports whether its publish ended (it takes its own lock;
	// the registry's is held).
	isEnded() bool
}

// registry is what HLS and DASH share: the state of each stream name, kept
// for EndGrace after its publish ends (a player finishes, a reconnect
// continues it) and then removed, the epochs that make file names unique
// per publish, and the context whose end releases every waiting request.
// Everything here is under mu; a stream's own lock is taken after it.
type registry[S packaged] struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	streams  map[string]S
	removals map[S]*time.Timer // of ended streams, in their grace
	closed   bool

	epochs atomic.Uint64
}

func (g *registry[S]) init() {
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.streams = make(map[string]S)
	g.removals = make(map[S]*time.Timer)
	// Epochs make file names unique per publish, so long-cached segments
	// of an earlier publish under the same stream name are never served
	// for a new one.
	g.epochs.Store(uint64(time.Now().UnixMilli()))
}

// newEpoch names a new publish (lowercase letters and digits).
func (g *registry[S]) newEpoch() string { return strconv.FormatUint(g.epochs.Add(1), 36) }

func (g *registry[S]) stream(name string) S {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.streams[name]
}

// stopRemovalLocked keeps st: a new publish took it over (or replaced it).
// Called with g.mu held.
func (g *registry[S]) stopRemovalLocked(st S) {
	if t, ok := g.removals[st]; ok {
		t.Stop()
		delete(g.removals, st)
	}
}

// scheduleRemoval forgets st grace from now, unless a new publish has
// taken it over by then.
func (g *registry[S]) scheduleRemoval(st S, grace time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.streams[st.streamName()] != st {
		return
	}
	g.stopRemovalLocked(st)
	g.removals[st] = time.AfterFunc(grace, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.removals[st] == nil {
			return // stopped after it fired
		}
		delete(g.removals, st)
		if g.streams[st.streamName()] == st && st.isEnded() {
			delete(g.streams, st.streamName())
		}
	})
}

// drop forgets st at once: its packaging stopped for want of players
// (transmux.ErrIdle). A later request starts a new one, with a new epoch.
func (g *registry[S]) drop(st S) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.streams[st.streamName()] == st {
		delete(g.streams, st.streamName())
	}
	g.stopRemovalLocked(st)
}

// close ends waiting requests and drops every stream's state. It starts
// no goroutine: the transmux Service that feeds the packager is closed by
// its owner. Safe to call more than once.
func (g *registry[S]) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	g.cancel()
	for st := range g.removals {
		g.stopRemovalLocked(st)
	}
	clear(g.streams)
}
