package composite

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/whipcast/whipcast/media"
)

// Publisher is the part of media.Registry a composite needs.
type Publisher interface {
	Publish(name string, tracks []*media.Track, onKeyframeRequest func()) (*media.Stream, error)
	Unpublish(s *media.Stream)
}

// Info is a running composite as the API shows it.
type Info struct {
	Room   string `json:"room"`
	Stream string `json:"stream"`
	Settings
	// Participants are the participants mixed, in layout order (for the
	// speaker layout the speaker first).
	Participants []string  `json:"participants"`
	Started      time.Time `json:"started"`
}

// Manager runs the composites of a gateway, at most Max at once.
type Manager struct {
	reg Publisher
	max int
	log *slog.Logger

	onStop func(Info)

	mu      sync.Mutex
	running map[string]*Composite // by room; nil while its codecs open
	closed  bool
	wg      sync.WaitGroup
}

// get returns room's running composite, or nil.
func (m *Manager) get(room string) *Composite {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running[room]
}

// OnStop sets a function called, on the composite's goroutine, after a
// composite has stopped and unpublished its stream. Set it before Start.
func (m *Manager) OnStop(fn func(Info)) { m.onStop = fn }

// NewManager makes a Manager that publishes composites in reg; max bounds how
// many run at once (each decodes every participant and encodes one picture
// stream: see docs/BENCHMARKS.md for the cost).
func NewManager(reg Publisher, max int, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{reg: reg, max: max, log: log, running: map[string]*Composite{}}
}

// Start runs a composite for room with the participants already publishing;
// later ones come through Join.
func (m *Manager) Start(room string, s Settings, participants []*media.Stream) (Info, error) {
	if err := s.Normalize(); err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Info{}, ErrClosed
	}
	if _, ok := m.running[room]; ok {
		m.mu.Unlock()
		return Info{}, ErrExists
	}
	if len(m.running) >= m.max {
		m.mu.Unlock()
		return Info{}, fmt.Errorf("%w: rooms.max_composites is %d", ErrTooMany, m.max)
	}
	m.running[room] = nil // reserve the slot while the codecs open
	m.mu.Unlock()
	c := &Composite{room: room, s: s, log: m.log.With("stream", room+"/"+Name)}
	err := c.open(m.reg)
	m.mu.Lock()
	if err == nil && m.closed {
		err = ErrClosed
		c.close(m.reg)
	}
	if err != nil {
		delete(m.running, room)
		m.mu.Unlock()
		return Info{}, err
	}
	m.running[room] = c
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		c.run(participants)
		m.reg.Unpublish(c.out)
		m.mu.Lock()
		if m.running[room] == c {
			delete(m.running, room)
		}
		m.mu.Unlock()
		// Only now: a Stop that returned means unpublished and gone, so
		// a second Stop or a Start for the room right after sees no
		// composite (closed at the end of run, a second Stop raced the
		// delete and found the stopped one still listed).
		close(c.done)
		if m.onStop != nil {
			m.onStop(c.info())
		}
	}()
	return c.info(), nil
}

// Join adds a participant's stream to its room's composite, if the room has
// one. The composite's own stream is never added.
func (m *Manager) Join(room string, s *media.Stream) {
	if c := m.get(room); c != nil && s != c.out {
		c.join(s)
	}
}

// Stop ends room's composite and waits for it.
func (m *Manager) Stop(room string) error {
	c := m.get(room)
	if c == nil {
		return ErrNotFound
	}
	c.stop()
	return nil
}

// End makes room's composite stop, without waiting (for callers that must
// not block, such as the rooms' event handler).
func (m *Manager) End(room string) {
	if c := m.get(room); c != nil {
		c.cancel()
	}
}

// Mute tells room's composite that participant muted (or unmuted) its
// audio or video (kind "audio" or "video"): muted audio is left out of the
// mix, muted video leaves a black tile. It does not block; it applies to the
// participant's later publishes too, until unmuted.
func (m *Manager) Mute(room, participant, kind string, muted bool) {
	if c := m.get(room); c != nil {
		select {
		case c.mutes <- mute{participant, kind, muted}:
		default:
			c.log.Warn("composite: mute dropped, the composite is not keeping up", "participant", participant)
		}
	}
}

// Get describes room's composite.
func (m *Manager) Get(room string) (Info, error) {
	c := m.get(room)
	if c == nil {
		return Info{}, ErrNotFound
	}
	return c.info(), nil
}

// Running is how many composites run.
func (m *Manager) Running() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.running)
}

// Close stops every composite and waits. Safe to call more than once.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, c := range m.running {
		if c != nil {
			c.cancel()
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
}
