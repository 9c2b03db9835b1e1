package events

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A subscriber that does not read is dropped once its queue is full; the
// others get every event, in order; Close ends every subscription and a
// later Subscribe gets a closed one.
func TestBus(t *testing.T) {
	b := &Bus{Queue: 2}
	slow, fast := b.Subscribe(), b.Subscribe()
	var types []string
	read := func() {
		for len(fast.C) > 0 {
			types = append(types, (<-fast.C).Type)
		}
	}
	b.Publish(Event{Type: "a"})
	b.Publish(Event{Type: "b"})
	read()
	b.Publish(Event{Type: "c"}) // the slow one's queue is full
	read()
	for range slow.C { // its two, then C is closed: dropped at the third
	}
	if !slow.Dropped() || fast.Dropped() {
		t.Fatalf("dropped: slow %v, fast %v; want only the slow one", slow.Dropped(), fast.Dropped())
	}
	if len(types) != 3 || types[0] != "a" || types[2] != "c" {
		t.Fatalf("the reading subscriber got %v, want a b c", types)
	}
	b.Close()
	if _, ok := <-fast.C; ok {
		t.Fatal("Close left a subscription open")
	}
	if _, ok := <-b.Subscribe().C; ok || b.Subscribers() != 0 {
		t.Fatal("Subscribe after Close must return a closed subscription")
	}
	b.Publish(Event{Type: "late"}) // no subscriber, no panic
}
