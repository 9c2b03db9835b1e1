package rooms

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Errors of Mute.
var (
	// ErrBadKind is returned by Mute for a kind other than "audio" or "video".
	ErrBadKind = errors.New(`bad kind: want "audio" or "video"`)
	// ErrNotParticipant is returned by Mute for a name that is not publishing
	// in the room.
	ErrNotParticipant = errors.New("not a participant of the room")
)

// watcherQueue is how many events a Watcher may have pending before it is
// dropped: a room's joins, leaves and mutes come at human pace, so only a
// reader that stopped reading fills it.
const watcherQueue = 64

// Watcher receives one room's events, from the snapshot Watch returned
// onwards, on its own bounded queue: the Manager never waits for it.
type Watcher struct {
	// C carries the room's Joined, Left, Muted, Unmuted and finally Ended
	// events. It is closed after Ended, when the watcher fell behind
	// (Dropped), when the Manager closes, or by Close.
	C <-chan Event

	ch      chan Event
	m       *Manager
	room    string
	dropped bool // set by the actor before ch is closed
}

// Dropped reports whether C was closed because the watcher fell more than
// its queue behind. Valid once C is closed.
func (w *Watcher) Dropped() bool { return w.dropped }

// Close stops the watcher. Safe to call more than once, also after C was
// closed by the Manager.
func (w *Watcher) Close() {
	_ = w.m.do(context.Background(), func() {
		if set := w.m.watchers[w.room]; set != nil {
			if _, ok := set[w]; ok {
				w.m.dropWatcher(w)
			}
		}
	})
}

// Watch returns the room as it is now and a Watcher of every event of the
// room after that snapshot, so a client can show the room and then follow
// it without a gap or a repeat. ErrNotFound for an unknown room.
func (m *Manager) Watch(ctx context.Context, name string) (Info, *Watcher, error) {
	var in Info
	var w *Watcher
	err := ErrNotFound
	if e := m.do(ctx, func() {
		r, ok := m.rooms[name]
		if !ok {
			return
		}
		ch := make(chan Event, watcherQueue)
		w = &Watcher{C: ch, ch: ch, m: m, room: name}
		if m.watchers[name] == nil {
			m.watchers[name] = map[*Watcher]struct{}{}
		}
		m.watchers[name][w] = struct{}{}
		in, err = r.info(), nil
	}); e != nil {
		return Info{}, nil, e
	}
	if err != nil {
		return Info{}, nil, err
	}
	return in, w, nil
}

// notifyWatchers hands e to the watchers of its room; after Ended the room's
// watchers are closed. Actor only.
func (m *Manager) notifyWatchers(e Event) {
	for w := range m.watchers[e.Room] {
		select {
		case w.ch <- e:
		default:
			w.dropped = true
			m.dropWatcher(w)
		}
	}
	if e.Type == Ended {
		for w := range m.watchers[e.Room] {
			m.dropWatcher(w)
		}
	}
}

// dropWatcher closes w and forgets it. Actor only.
func (m *Manager) dropWatcher(w *Watcher) {
	set := m.watchers[w.room]
	delete(set, w)
	if len(set) == 0 {
		delete(m.watchers, w.room)
	}
	close(w.ch)
}

// closeWatchers closes every watcher (the Manager is closing). Actor only.
func (m *Manager) closeWatchers() {
	for _, set := range m.watchers {
		for w := range set {
			m.dropWatcher(w)
		}
	}
}

// Mute records that a participant muted (muted true) or unmuted its audio
// or video and announces it as Muted or Unmuted; saying the same again is
// no event. The Manager only relays the signal: what the participant sends
// is its own business (a browser sends silence or black for a disabled
// track). The state lasts while the participant's publish does.
func (m *Manager) Mute(ctx context.Context, name, participant, kind string, muted bool) error {
	if kind != "audio" && kind != "video" {
		return fmt.Errorf("%w: %q", ErrBadKind, kind)
	}
	var err error
	if e := m.do(ctx, func() {
		r, ok := m.rooms[name]
		if !ok {
			err = fmt.Errorf("%w: %q", ErrNotFound, name)
			return
		}
		if _, ok := r.participants[participant]; !ok {
			err = fmt.Errorf("%w: %q is not publishing in %q", ErrNotParticipant, participant, name)
			return
		}
		kinds := r.muted[participant]
		if kinds[kind] == muted {
			return
		}
		if kinds == nil {
			kinds = map[string]bool{}
			r.muted[participant] = kinds
		}
		t := Unmuted
		if muted {
			kinds[kind] = true
			t = Muted
		} else {
			delete(kinds, kind)
			if len(kinds) == 0 {
				delete(r.muted, participant)
			}
		}
		m.emit(Event{Type: t, Room: name, Participant: participant, Kind: kind})
	}); e != nil {
		return e
	}
	return err
}

// mutedInfo is Info.Muted: nil when nobody muted anything.
func (r *room) mutedInfo() map[string][]string {
	if len(r.muted) == 0 {
		return nil
	}
	out := make(map[string][]string, len(r.muted))
	for p, kinds := range r.muted {
		out[p] = slices.Sorted(maps.Keys(kinds))
	}
	return out
}
