package ingest

import "time"

const (
	// reorderSlots bounds how many packets ahead of a missing one are held.
	reorderSlots = 128
	// reorderMaxPackets and reorderMaxDelay bound how long a hole is waited
	// for (NACK/RTX may fill it) before it is declared lost.
	reorderMaxPackets = 96
	reorderMaxDelay   = 60 * time.Millisecond
)

// packetSink receives packets in sequence order. gap is true when one or
// more packets before this one were lost. payload is only valid during the
// call.
type packetSink func(ts uint32, marker bool, payload []byte, gap bool, arrival time.Time)

type reorderSlot struct {
	used    bool
	seq     uint16
	ts      uint32
	marker  bool
	arrival time.Time
	buf     []byte
}

// reorderBuffer puts RTP packets back in sequence-number order within a small
// window, handling 16-bit wraps (RFC 3550 §A.1). Packets that arrive in order
// go straight through without a copy; only early packets are copied into a
// slot, whose buffer is reused.
type reorderBuffer struct {
	out     packetSink
	started bool
	next    uint16 // next sequence number expected
	held    int
	oldest  time.Time // arrival of the oldest held packet
	slots   [reorderSlots]reorderSlot
	lost    uint64
}

func newReorderBuffer(out packetSink) *reorderBuffer {
	return &reorderBuffer{out: out}
}

// push takes one packet. It calls out zero or more times.
func (r *reorderBuffer) push(seq uint16, ts uint32, marker bool, payload []byte, arrival time.Time) {
	if !r.started {
		r.started = true
		r.next = seq
	}
	d := int16(seq - r.next)
	switch {
	case d < 0:
		// Late or duplicate: its place has been passed. A jump far back is a
		// sender restart; resynchronise on it.
		if d > -reorderSlots*4 {
			return
		}
		r.flushAll()
		r.next = seq
		r.deliver(seq, ts, marker, payload, true, arrival)
		return
	case d == 0:
		r.deliver(seq, ts, marker, payload, false, arrival)
		r.drain()
		return
	case int(d) >= reorderSlots:
		// Too far ahead to hold: give up on everything missing.
		r.flushAll()
		r.next = seq
		r.deliver(seq, ts, marker, payload, true, arrival)
		return
	}
	s := &r.slots[seq%reorderSlots]
	if s.used {
		return // duplicate
	}
	s.used = true
	s.seq = seq
	s.ts = ts
	s.marker = marker
	s.arrival = arrival
	if s.buf == nil {
		s.buf = make([]byte, 0, 1500)
	}
	s.buf = append(s.buf[:0], payload...)
	if r.held == 0 {
		r.oldest = arrival
	}
	r.held++
	if r.held >= reorderMaxPackets || arrival.Sub(r.oldest) >= reorderMaxDelay {
		r.skipHole()
	}
}

func (r *reorderBuffer) deliver(seq uint16, ts uint32, marker bool, payload []byte, gap bool, arrival time.Time) {
	r.next = seq + 1
	r.out(ts, marker, payload, gap, arrival)
}

// drain delivers held packets that are now in order.
func (r *reorderBuffer) drain() {
	for r.held > 0 {
		s := &r.slots[r.next%reorderSlots]
		if !s.used || s.seq != r.next {
			return
		}
		r.take(s, false)
	}
}

func (r *reorderBuffer) take(s *reorderSlot, gap bool) {
	s.used = false
	r.held--
	r.deliver(s.seq, s.ts, s.marker, s.buf, gap, s.arrival)
	if r.held > 0 {
		r.oldest = r.oldestHeld()
	}
}

// skipHole declares the packets up to the first held one lost.
func (r *reorderBuffer) skipHole() {
	for i := 1; i < reorderSlots; i++ {
		seq := r.next + uint16(i)
		s := &r.slots[seq%reorderSlots]
		if s.used && s.seq == seq {
			r.lost += uint64(i)
			r.take(s, true)
			r.drain()
			return
		}
	}
	// Unreachable while the invariant (held slots are ahead of next) holds;
	// never loop forever on network input if it does not.
	for i := range r.slots {
		r.slots[i].used = false
	}
	r.held = 0
}

// flushAll delivers everything held, in order, marking holes as gaps.
func (r *reorderBuffer) flushAll() {
	for r.held > 0 {
		r.skipHole()
	}
}

func (r *reorderBuffer) oldestHeld() time.Time {
	var t time.Time
	for i := range r.slots {
		s := &r.slots[i]
		if s.used && (t.IsZero() || s.arrival.Before(t)) {
			t = s.arrival
		}
	}
	return t
}
