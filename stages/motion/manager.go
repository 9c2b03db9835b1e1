package motion

import (
	"fmt"
	"sync"

	"github.com/whipcast/whipcast/media"
)

// Manager runs at most one Detector per stream, with one map and one lock:
// a rule's start at publish and an API's replace or stop go through it, so
// two detectors never watch one stream and none starts after Close. Each
// detector keeps the caller's label (what the API shows of it) for its
// life; a watcher goroutine per detector, which Close joins, forgets it
// once it stops (its stream ended, Stop, Close) and then calls its onDone.
type Manager struct {
	mu      sync.Mutex
	running map[*media.Stream]*managed
	closed  bool
	wg      sync.WaitGroup // the watchers
}

type managed struct {
	d     *Detector
	label any
}

// NewManager makes an empty Manager.
func NewManager() *Manager { return &Manager{running: map[*media.Stream]*managed{}} }

// ErrClosed is Start's error after Close.
var ErrClosed = fmt.Errorf("motion: manager closed")

// Start runs a detector on s with set, labelled label, stopping the one
// that runs on s first when replace is true; with replace false a stream
// that has one keeps it and Start returns (nil, nil). onDone (may be nil)
// runs on the detector's watcher once it has stopped and been forgotten.
// The decoder opens under the Manager's lock: starts are rare, and one
// must never interleave with another for the same stream.
func (m *Manager) Start(s *media.Stream, set Settings, label any, replace bool, onDone func()) (*Detector, error) {
	return m.start(s, nil, set, label, replace, onDone)
}

// StartFrom is Start on r's stream through r (StartFrom of the package):
// a detector that starts takes r; otherwise (an error, or a detector that
// runs already and replace is false) r stays the caller's.
func (m *Manager) StartFrom(r *media.Reader, set Settings, label any, replace bool, onDone func()) (*Detector, error) {
	return m.start(r.Stream(), r, set, label, replace, onDone)
}

func (m *Manager) start(s *media.Stream, r *media.Reader, set Settings, label any, replace bool, onDone func()) (*Detector, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if old, ok := m.running[s]; ok {
		if !replace {
			return nil, nil
		}
		delete(m.running, s)
		old.d.Close() // its watcher finds it forgotten already
	}
	d, err := start(s, r, set)
	if err != nil {
		return nil, err
	}
	e := &managed{d: d, label: label}
	m.running[s] = e
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		<-d.Done()
		m.mu.Lock()
		if m.running[s] == e {
			delete(m.running, s)
		}
		m.mu.Unlock()
		if onDone != nil {
			onDone()
		}
	}()
	return d, nil
}

// Stop stops s's detector and reports whether one ran.
func (m *Manager) Stop(s *media.Stream) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.running[s]
	if !ok {
		return false
	}
	delete(m.running, s)
	e.d.Close()
	return true
}

// Label returns the label of the detector running on s.
func (m *Manager) Label(s *media.Stream) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.running[s]
	if !ok {
		return nil, false
	}
	select {
	case <-e.d.Done():
		return nil, false // stopped; its watcher forgets it
	default:
	}
	return e.label, true
}

// Labels returns the labels of every running detector.
func (m *Manager) Labels() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]any, 0, len(m.running))
	for _, e := range m.running {
		out = append(out, e.label)
	}
	return out
}

// Close stops every detector, waits for their watchers (and so their
// onDone) and refuses starts from then on. Safe to call more than once.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	ds := make([]*Detector, 0, len(m.running))
	for s, e := range m.running {
		ds = append(ds, e.d)
		delete(m.running, s)
	}
	m.mu.Unlock()
	for _, d := range ds {
		d.Close()
	}
	m.wg.Wait()
}
