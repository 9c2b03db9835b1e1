package rooms

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
)

type recorder struct {
	mu sync.Mutex
	ev []Event
	ch chan Event
}

func (r *recorder) on(e Event) {
	r.mu.Lock()
	r.ev = append(r.ev, e)
	r.mu.Unlock()
	r.ch <- e
}

func (r *recorder) next(t *testing.T) Event {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(15 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func TestRoomLifecycle(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	rec := &recorder{ch: make(chan Event, 64)}
	var kicked []string
	m := New(Settings{Max: 2, Grace: 150 * time.Millisecond, OnEvent: rec.on, Kick: func(s string) { kicked = append(kicked, s) }})
	reg := media.NewRegistry()
	m.Attach(reg)

	for name, want := range map[string]error{"": ErrBadName, "a/b": ErrBadName, "x y": ErrBadName} {
		if _, err := m.Create(ctx, name, 0); !errors.Is(err, want) {
			t.Errorf("Create(%q): %v, want %v", name, err, want)
		}
	}
	in, err := m.Create(ctx, "studio", time.Second)
	if err != nil || in.Grace != "1s" || len(in.Participants) != 0 || in.EmptySince == nil {
		t.Fatalf("Create: %+v %v", in, err)
	}
	if _, err := m.Create(ctx, "studio", 0); !errors.Is(err, ErrExists) {
		t.Errorf("second Create: %v", err)
	}
	if _, err := m.Create(ctx, "other", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, "third", 0); !errors.Is(err, ErrTooMany) {
		t.Errorf("Create past Max: %v", err)
	}

	// Streams outside a room are not participants.
	lone, _ := reg.Publish("nobody/cam", nil, nil)
	alice, _ := reg.Publish("studio/alice", nil, nil)
	if e := rec.next(t); e.Type != Joined || e.Stream() != "studio/alice" {
		t.Fatalf("event %+v", e)
	}
	bob, _ := reg.Publish("studio/bob", nil, nil)
	rec.next(t)
	if in, _ := m.Get(ctx, "studio"); len(in.Participants) != 2 || in.EmptySince != nil {
		t.Fatalf("Get: %+v", in)
	}
	reg.Unpublish(alice)
	if e := rec.next(t); e.Type != Left || e.Participant != "alice" {
		t.Fatalf("event %+v", e)
	}
	reg.Unpublish(bob)
	rec.next(t)
	start := time.Now()
	// "other" (grace 150 ms, empty since creation) ends first, then studio.
	e := rec.next(t)
	if e.Type != Ended || e.Room != "other" || e.Reason != "empty" {
		t.Fatalf("event %+v", e)
	}
	e = rec.next(t)
	if e.Type != Ended || e.Room != "studio" {
		t.Fatalf("event %+v", e)
	}
	// Not before its grace; the upper bound only says it was the grace
	// that ended it (a busy machine may deliver the event late).
	if d := time.Since(start); d < 900*time.Millisecond || d > 15*time.Second {
		t.Errorf("studio ended %v after it emptied, want its 1s grace", d)
	}
	if l, _ := m.List(ctx); len(l) != 0 {
		t.Errorf("List after the ends: %+v", l)
	}

	// Delete ends a room with people in it and kicks them.
	if _, err := m.Create(ctx, "live", 0); err != nil {
		t.Fatal(err)
	}
	carol, _ := reg.Publish("live/carol", nil, nil)
	rec.next(t)
	if err := m.Delete(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if e := rec.next(t); e.Type != Left || e.Reason != "deleted" {
		t.Fatalf("event %+v", e)
	}
	if e := rec.next(t); e.Type != Ended || e.Reason != "deleted" {
		t.Fatalf("event %+v", e)
	}
	if len(kicked) != 1 || kicked[0] != "live/carol" {
		t.Errorf("kicked %v", kicked)
	}
	if err := m.Delete(ctx, "live"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete again: %v", err)
	}
	reg.Unpublish(carol)
	reg.Unpublish(lone)
	m.Close()
	m.Close()
	if _, err := m.Create(ctx, "late", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines leaked", n-before)
	}
}

func TestParticipant(t *testing.T) {
	for in, want := range map[string][2]string{"r/p": {"r", "p"}, "r": {}, "r/p/q": {}, "/p": {}} {
		r, p, _ := Participant(in)
		if r != want[0] || p != want[1] {
			t.Errorf("Participant(%q) = %q, %q", in, r, p)
		}
	}
}
