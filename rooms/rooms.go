// Package rooms keeps the state of rooms: named groups whose participants
// publish with WHIP to {room}/{participant} and watch each other with WHEP
// on the same names (SFU-style forwarding, no transcoding). The signalling is
// WHIP and WHEP themselves; this package only decides who is in which room,
// tells listeners about joins, leaves, mutes and ends, and ends a room that
// stayed empty past its grace period. Watch (watch.go) gives the room
// signalling socket one room's snapshot and events; Mute records what a
// participant said it muted.
//
// A Manager is a small actor: one goroutine owns every room and runs the
// commands sent to it, so no lock guards room state.
package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/whipcast/whipcast/media"
)

// Defaults of Settings.
const (
	DefaultMax   = 100
	DefaultGrace = 30 * time.Second
)

// Errors of the Manager.
var (
	// ErrBadName is returned for a room name that is not one stream-name
	// segment ([A-Za-z0-9_-]{1,64}).
	ErrBadName = errors.New("bad room name")
	// ErrBadGrace is returned by Create for a negative grace period.
	ErrBadGrace = errors.New("bad grace period")
	// ErrExists is returned by Create for a name already in use.
	ErrExists = errors.New("room already exists")
	// ErrNotFound is returned for an unknown room.
	ErrNotFound = errors.New("room not found")
	// ErrTooMany is wrapped by Create when the rooms.max limit is reached.
	ErrTooMany = errors.New("too many rooms")
	// ErrClosed is returned once the Manager is closed.
	ErrClosed = errors.New("rooms closed")
)

// Settings configure a Manager. Zero values mean the defaults.
type Settings struct {
	// Max is the most rooms that may exist at once (config rooms.max).
	// Default DefaultMax.
	Max int
	// Grace is how long a room may stay empty (after creation or after its
	// last participant left) before it ends, when Create is given none
	// (config rooms.grace). Default DefaultGrace.
	Grace time.Duration
	// OnEvent receives joins, leaves, mutes and ends, on the Manager's
	// goroutine; it must not block. Nil: none.
	OnEvent func(Event)
	// Kick ends a participant's publish (its stream name) when its room is
	// deleted. It is called off the Manager's goroutine and may block.
	Kick func(stream string)
	// Logger receives the Manager's logs. Default slog.Default().
	Logger *slog.Logger
}

// EventType tells what happened to a room.
type EventType int

// Event types.
const (
	Joined EventType = iota + 1
	Left
	Ended
	Muted
	Unmuted
)

// String is the events-socket name: room.joined, room.left, room.ended,
// room.muted, room.unmuted.
func (t EventType) String() string {
	switch t {
	case Joined:
		return "room.joined"
	case Left:
		return "room.left"
	case Ended:
		return "room.ended"
	case Muted:
		return "room.muted"
	case Unmuted:
		return "room.unmuted"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is a join, a leave, a mute or the end of a room.
type Event struct {
	Type EventType
	Room string
	// Participant is set for Joined, Left, Muted and Unmuted.
	Participant string
	// Kind is "audio" or "video" for Muted and Unmuted.
	Kind string
	// Reason says why a room ended (empty, deleted, shutdown).
	Reason string
}

// Stream is the stream name of the event's participant ("" for Ended).
func (e Event) Stream() string {
	if e.Participant == "" {
		return ""
	}
	return e.Room + "/" + e.Participant
}

// Info is a room as the API shows it.
type Info struct {
	// Name is the room name: the first segment of its participants' streams.
	Name string `json:"name"`
	// Grace is how long the room may stay empty, e.g. "30s".
	Grace string `json:"grace"`
	// Created is when the room was created.
	Created time.Time `json:"created"`
	// Participants are the names of the participants publishing, sorted.
	Participants []string `json:"participants"`
	// EmptySince is when the room became empty; absent while someone is in.
	EmptySince *time.Time `json:"empty_since,omitempty"`
	// Muted maps each participant that said it muted something (Mute) to
	// the kinds it muted ("audio", "video"); absent when nobody did.
	Muted map[string][]string `json:"muted,omitempty"`
}

type room struct {
	name         string
	grace        time.Duration
	created      time.Time
	participants map[string]*media.Stream
	muted        map[string]map[string]bool // participant → kind → muted (watch.go)
	emptySince   time.Time
	timer        *time.Timer
	gen          int // which empty period the timer belongs to
}

func (r *room) info() Info {
	in := Info{Name: r.name, Grace: r.grace.String(), Created: r.created, Participants: make([]string, 0, len(r.participants))}
	for p := range r.participants {
		in.Participants = append(in.Participants, p)
	}
	slices.Sort(in.Participants)
	in.Muted = r.mutedInfo()
	if len(r.participants) == 0 {
		t := r.emptySince
		in.EmptySince = &t
	}
	return in
}

// Manager owns the rooms.
type Manager struct {
	set  Settings
	log  *slog.Logger
	cmds chan func()
	quit chan struct{}
	wg   sync.WaitGroup // the actor and the stream watchers

	closeOnce sync.Once

	// Owned by the actor goroutine.
	rooms    map[string]*room
	watchers map[string]map[*Watcher]struct{} // by room name (watch.go)
}

// New starts a Manager. Close stops it.
func New(set Settings) *Manager {
	m := &Manager{set: set, log: set.Logger, cmds: make(chan func()), quit: make(chan struct{}),
		rooms: map[string]*room{}, watchers: map[string]map[*Watcher]struct{}{}}
	if m.set.Max <= 0 {
		m.set.Max = DefaultMax
	}
	if m.set.Grace <= 0 {
		m.set.Grace = DefaultGrace
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run()
	}()
	return m
}

func (m *Manager) run() {
	for {
		select {
		case fn := <-m.cmds:
			fn()
		case <-m.quit:
			for _, r := range m.rooms {
				if r.timer != nil {
					r.timer.Stop()
				}
			}
			m.closeWatchers()
			return
		}
	}
}

// do runs fn on the actor goroutine and waits for it.
func (m *Manager) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case m.cmds <- func() { fn(); close(done) }:
	case <-m.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done // the actor runs fn to the end before it reads quit again
	return nil
}

func (m *Manager) emit(e Event) {
	if m.set.OnEvent != nil {
		m.set.OnEvent(e)
	}
	m.notifyWatchers(e)
}

// ValidName checks a room name: one stream-name segment.
func ValidName(name string) error {
	if strings.Contains(name, "/") || media.ValidateName(name) != nil || len(name) > 64 {
		return fmt.Errorf("%w: %q: want [A-Za-z0-9_-]{1,64}", ErrBadName, name)
	}
	return nil
}

// Create makes an empty room; grace 0 means Settings.Grace. The room ends
// if nobody joins within its grace period.
func (m *Manager) Create(ctx context.Context, name string, grace time.Duration) (Info, error) {
	if err := ValidName(name); err != nil {
		return Info{}, err
	}
	if grace < 0 {
		return Info{}, fmt.Errorf("%w: %s is negative", ErrBadGrace, grace)
	}
	if grace == 0 {
		grace = m.set.Grace
	}
	var in Info
	var err error
	if e := m.do(ctx, func() {
		if _, ok := m.rooms[name]; ok {
			err = fmt.Errorf("%w: %q", ErrExists, name)
			return
		}
		if len(m.rooms) >= m.set.Max {
			err = fmt.Errorf("%w: rooms.max (%d) reached; delete a room or raise rooms.max", ErrTooMany, m.set.Max)
			return
		}
		now := time.Now()
		r := &room{name: name, grace: grace, created: now, participants: map[string]*media.Stream{}, muted: map[string]map[string]bool{}}
		m.rooms[name] = r
		m.becameEmpty(r, now)
		in = r.info()
	}); e != nil {
		return Info{}, e
	}
	if err == nil {
		m.log.Info("rooms: created", "room", name, "grace", grace)
	}
	return in, err
}

// becameEmpty starts the room's grace timer. Actor only.
func (m *Manager) becameEmpty(r *room, now time.Time) {
	r.emptySince = now
	r.gen++
	gen := r.gen
	r.timer = time.AfterFunc(r.grace, func() {
		_ = m.do(context.Background(), func() {
			if m.rooms[r.name] == r && r.gen == gen && len(r.participants) == 0 {
				m.end(r, "empty")
			}
		})
	})
}

// end removes the room; participants still in get Left first. Actor only.
func (m *Manager) end(r *room, reason string) []string {
	if r.timer != nil {
		r.timer.Stop()
	}
	var streams []string
	for p := range r.participants {
		streams = append(streams, r.name+"/"+p)
		m.emit(Event{Type: Left, Room: r.name, Participant: p, Reason: reason})
	}
	clear(r.participants)
	clear(r.muted)
	delete(m.rooms, r.name)
	m.emit(Event{Type: Ended, Room: r.name, Reason: reason})
	m.log.Info("rooms: ended", "room", r.name, "reason", reason)
	return streams
}

// Get returns the room.
func (m *Manager) Get(ctx context.Context, name string) (Info, error) {
	var in Info
	err := ErrNotFound
	if e := m.do(ctx, func() {
		if r, ok := m.rooms[name]; ok {
			in, err = r.info(), nil
		}
	}); e != nil {
		return Info{}, e
	}
	return in, err
}

// List returns every room, sorted by name.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	var out []Info
	err := m.do(ctx, func() {
		out = make([]Info, 0, len(m.rooms))
		for _, r := range m.rooms {
			out = append(out, r.info())
		}
	})
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// Delete ends the room now and ends its participants' publishes.
func (m *Manager) Delete(ctx context.Context, name string) error {
	var streams []string
	err := ErrNotFound
	if e := m.do(ctx, func() {
		if r, ok := m.rooms[name]; ok {
			streams, err = m.end(r, "deleted"), nil
		}
	}); e != nil {
		return e
	}
	if m.set.Kick != nil {
		for _, s := range streams {
			m.set.Kick(s)
		}
	}
	return err
}

// Composite is the reserved participant slot of a room's composite stream,
// {room}/composite: it is never a participant, so the composite neither
// counts as someone in the room nor keeps an empty room alive.
const Composite = "composite"

// Participant splits a stream name into room and participant when it names
// a participant slot: exactly two segments, the second not Composite.
// Whether the room exists is the Manager's business.
func Participant(stream string) (room, participant string, ok bool) {
	room, participant, ok = strings.Cut(stream, "/")
	if !ok || room == "" || participant == "" || strings.Contains(participant, "/") || participant == Composite {
		return "", "", false
	}
	return room, participant, true
}

// Attach makes every stream published on reg as {room}/{participant}, while
// that room exists, a participant of it: it joins now and leaves when the
// stream ends.
func (m *Manager) Attach(reg *media.Registry) {
	reg.OnPublish(m.streamStarted)
}

// streamStarted is called on the publisher's goroutine; it never blocks for
// long (one actor command).
func (m *Manager) streamStarted(s *media.Stream) {
	name, p, ok := Participant(s.Name)
	if !ok {
		return
	}
	joined := false
	if m.do(context.Background(), func() {
		r, ok := m.rooms[name]
		if !ok {
			return
		}
		if old := r.participants[p]; old != nil {
			m.emit(Event{Type: Left, Room: name, Participant: p, Reason: "replaced"})
		}
		r.participants[p] = s
		delete(r.muted, p)
		if r.timer != nil {
			r.timer.Stop()
		}
		r.gen++
		joined = true
		m.emit(Event{Type: Joined, Room: name, Participant: p})
	}) != nil || !joined {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-s.Done():
		case <-m.quit:
			return
		}
		_ = m.do(context.Background(), func() {
			r, ok := m.rooms[name]
			if !ok || r.participants[p] != s {
				return // the room ended or the slot was taken over
			}
			delete(r.participants, p)
			delete(r.muted, p)
			m.emit(Event{Type: Left, Room: name, Participant: p})
			if len(r.participants) == 0 {
				m.becameEmpty(r, time.Now())
			}
		})
	}()
}

// Close stops the Manager and waits for its goroutines. Rooms are dropped
// without events; every Watcher's channel is closed. Safe to call more than
// once.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		close(m.quit)
		m.wg.Wait()
	})
}
