package packager

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/transmux"
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
	sv     *transmux.Service // set by attach: requests are its demand

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

// attach makes sv the packager's source: settle (under mu) takes its
// settings, consume becomes one of its consumers, and every request for a
// live stream is a player's demand on it (Service.Watch).
func (g *registry[S]) attach(sv *transmux.Service, settle func(transmux.Settings), consume transmux.Consumer) {
	g.mu.Lock()
	settle(sv.Settings())
	g.sv = sv
	g.mu.Unlock()
	sv.AddConsumer(consume)
}

// request is the part of a GET that HLS and DASH share, once the path is
// parsed: the request counts as a player's demand on the stream while it
// is served (a name that is not published is refused at once; an ended
// stream is served from its state, in its grace), and the stream's state
// is looked up. ok false: answered 404. Call done when served.
func (g *registry[S]) request(w http.ResponseWriter, r *http.Request, name string) (st S, done func(), ok bool) {
	done = func() {}
	if g.sv != nil {
		v, _ := g.sv.Watch(r.Context(), name)
		done = v.Done
	}
	st = g.stream(name)
	var none S
	if st == none {
		done()
		http.NotFound(w, r)
		return none, nil, false
	}
	return st, done, true
}

// allowGet sets what every answer carries (CORS: players on other
// origins) and refuses anything but GET and HEAD with 405.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	return true
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
	var t *time.Timer
	t = time.AfterFunc(grace, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.removals[st] != t {
			return // stopped (or replaced) after it fired
		}
		delete(g.removals, st)
		if g.streams[st.streamName()] == st && st.isEnded() {
			delete(g.streams, st.streamName())
		}
	})
	g.removals[st] = t
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
