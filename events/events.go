// Package events is the gateway's domain event bus: the parts (ingest,
// recorder, outputs, stages) publish what happened, and subscribers (the
// WebSocket of GET /v1/events, webhooks) each read it through a bounded
// queue, so a slow subscriber never slows a publisher or another subscriber.
package events

import (
	"sync"
	"time"
)

// Event is one thing that happened in the gateway: a stream started or
// ended, a recording or output changed state (docs/api.md lists the types).
// web sends each as one message of GET /v1/events.
type Event struct {
	// Type is e.g. stream.started, stream.ended, recording.started,
	// recording.finished, recording.failed, output.state (docs/api.md).
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	Stream string    `json:"stream,omitempty"`
	// Data holds the type's details.
	Data map[string]any `json:"data,omitempty"`
}

// DefaultEventQueue is a subscriber's queue length when Bus.Queue is 0.
const DefaultEventQueue = 256

// Bus fans events out to subscribers, each with a bounded queue: Publish
// never blocks, and a subscriber whose queue is full is dropped (its socket
// is closed with a reason) rather than slowing the others.
type Bus struct {
	// Queue is each subscriber's queue length. Default DefaultEventQueue.
	Queue int

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// Subscription receives a Bus's events on C until it is dropped or closed.
type Subscription struct {
	// C carries the events; it is closed when the subscription ends.
	C <-chan Event

	ch      chan Event
	bus     *Bus
	dropped bool
}

// Dropped reports whether the subscription ended because it fell behind.
// Valid once C is closed.
func (s *Subscription) Dropped() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.dropped
}

// Close ends the subscription. Safe to call more than once.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.ch)
	}
}

// Subscribe adds a subscriber.
func (b *Bus) Subscribe() *Subscription {
	n := b.Queue
	if n <= 0 {
		n = DefaultEventQueue
	}
	ch := make(chan Event, n)
	s := &Subscription{C: ch, ch: ch, bus: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[*Subscription]struct{}{}
	}
	if b.closed {
		close(ch)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Publish hands e to every subscriber; Time is set when zero.
func (b *Bus) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped = true
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// Subscribers counts the subscribers.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close ends every subscription. Safe to call more than once.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}
