package rooms

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
)

func nextWatched(t *testing.T, w *Watcher) (Event, bool) {
	t.Helper()
	select {
	case e, ok := <-w.C:
		return e, ok
	case <-time.After(15 * time.Second):
		t.Fatal("no event on the watcher")
	}
	return Event{}, false
}

// TestWatchAndMute: a watcher sees the snapshot, then every join, mute and
// leave of its room (and nothing of other rooms), and is closed after the
// room ends; mute state shows in Info and is forgotten when the publish ends.
func TestWatchAndMute(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{ch: make(chan Event, 64)}
	m := New(Settings{Grace: time.Minute, OnEvent: rec.on})
	defer m.Close()
	reg := media.NewRegistry()
	defer reg.Close()
	m.Attach(reg)
	for _, name := range []string{"studio", "other"} {
		if _, err := m.Create(ctx, name, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := m.Watch(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Watch unknown room: %v", err)
	}
	alice, _ := reg.Publish("studio/alice", nil, nil)
	rec.next(t)
	in, w, err := m.Watch(ctx, "studio")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if fmt.Sprint(in.Participants) != "[alice]" || in.Muted != nil {
		t.Fatalf("snapshot %+v", in)
	}

	for _, c := range []struct {
		room, p, kind string
		want          error
	}{
		{"studio", "alice", "screen", ErrBadKind},
		{"nope", "alice", "audio", ErrNotFound},
		{"studio", "bob", "audio", ErrNotParticipant},
	} {
		if err := m.Mute(ctx, c.room, c.p, c.kind, true); !errors.Is(err, c.want) {
			t.Errorf("Mute(%s, %s, %s): %v, want %v", c.room, c.p, c.kind, err, c.want)
		}
	}
	other, _ := reg.Publish("other/x", nil, nil) // not seen by w
	defer reg.Unpublish(other)
	bob, _ := reg.Publish("studio/bob", nil, nil)
	if e, _ := nextWatched(t, w); e.Type != Joined || e.Participant != "bob" {
		t.Fatalf("event %+v", e)
	}
	for range 2 { // the second is no change and no event
		if err := m.Mute(ctx, "studio", "bob", "audio", true); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Mute(ctx, "studio", "bob", "audio", false); err != nil {
		t.Fatal(err)
	}
	if err := m.Mute(ctx, "studio", "bob", "video", true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Event{
		{Type: Muted, Room: "studio", Participant: "bob", Kind: "audio"},
		{Type: Unmuted, Room: "studio", Participant: "bob", Kind: "audio"},
		{Type: Muted, Room: "studio", Participant: "bob", Kind: "video"},
	} {
		if e, _ := nextWatched(t, w); e != want {
			t.Fatalf("event %+v, want %+v", e, want)
		}
	}
	if in, _ := m.Get(ctx, "studio"); fmt.Sprint(in.Muted) != "map[bob:[video]]" {
		t.Fatalf("Muted %v", in.Muted)
	}
	if e := (Event{Type: Muted}); e.Type.String() != "room.muted" || Unmuted.String() != "room.unmuted" {
		t.Error("event names")
	}
	reg.Unpublish(bob)
	if e, _ := nextWatched(t, w); e.Type != Left || e.Participant != "bob" {
		t.Fatalf("event %+v", e)
	}
	if in, _ := m.Get(ctx, "studio"); in.Muted != nil {
		t.Fatalf("mute outlived the publish: %v", in.Muted)
	}

	// A second watcher closed early is just forgotten.
	_, w2, err := m.Watch(ctx, "studio")
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	w2.Close()
	if _, ok := <-w2.C; ok {
		t.Fatal("closed watcher still open")
	}

	// Deleting the room: alice leaves, the room ends, the watcher closes.
	if err := m.Delete(ctx, "studio"); err != nil {
		t.Fatal(err)
	}
	reg.Unpublish(alice)
	if e, _ := nextWatched(t, w); e.Type != Left || e.Reason != "deleted" {
		t.Fatalf("event %+v", e)
	}
	if e, _ := nextWatched(t, w); e.Type != Ended {
		t.Fatalf("event %+v", e)
	}
	if _, ok := nextWatched(t, w); ok || w.Dropped() {
		t.Fatal("watcher not closed after the room ended")
	}
	w.Close() // after the Manager closed it: no panic
}

// TestWatcherDroppedAndClosed: a watcher that stops reading is dropped
// instead of blocking the Manager, and Close closes the rest.
func TestWatcherDroppedAndClosed(t *testing.T) {
	ctx := context.Background()
	m := New(Settings{Grace: time.Minute})
	reg := media.NewRegistry()
	defer reg.Close()
	m.Attach(reg)
	if _, err := m.Create(ctx, "r", 0); err != nil {
		t.Fatal(err)
	}
	p, _ := reg.Publish("r/p", nil, nil)
	defer reg.Unpublish(p)
	_, slow, _ := m.Watch(ctx, "r")
	for i := range watcherQueue + 1 {
		if err := m.Mute(ctx, "r", "p", "audio", i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for range slow.C {
		n++
	}
	if !slow.Dropped() || n != watcherQueue {
		t.Fatalf("slow watcher: dropped %v after %d events", slow.Dropped(), n)
	}
	_, idle, _ := m.Watch(ctx, "r")
	m.Close()
	for range idle.C {
	}
	if idle.Dropped() {
		t.Fatal("idle watcher marked dropped by Close")
	}
	idle.Close()
}
