package ingest

// The reorder buffer's timed side: NACK requests, expiry of holes, delivery in order.

import "time"

// maintain gives up holes whose wait has passed and re-requests the ones
// due for another try.
func (r *reorderBuffer) maintain(now time.Time) {
	wait := r.wait()
	for r.held > 0 {
		s := &r.slots[r.next&r.mask]
		if !s.hole || s.seq != r.next || !r.expired(s, now, wait) {
			break
		}
		r.skipHole()
	}
	r.request(now)
}

// expired reports whether the hole s is given up: its wait has passed and
// it was requested nackWaitRetries times (a busy machine that runs the
// timers late still gets every request out), or it is older than
// reorderMaxWait whatever happened.
func (r *reorderBuffer) expired(s *reorderSlot, now time.Time, wait time.Duration) bool {
	age := now.Sub(s.found)
	switch {
	case age >= reorderMaxWait:
		return true
	case age < wait:
		return false
	case r.nack == nil:
		return true
	}
	return s.tries >= nackWaitRetries
}

// request NACKs the holes due for a first or a further request.
func (r *reorderBuffer) request(now time.Time) {
	if r.nack == nil || r.holes == 0 || now.Sub(r.lastScan) < nackScanEvery {
		return
	}
	r.lastScan = now
	retry := r.retry()
	r.scratch = r.scratch[:0]
	for q := r.next; q != r.top+1; q++ {
		s := &r.slots[q&r.mask]
		if !s.hole || s.seq != q || s.tries >= nackMaxTries {
			continue
		}
		if s.tries == 0 && now.Sub(s.found) < r.reorderDelay || s.tries > 0 && now.Sub(s.nackAt) < retry {
			continue
		}
		s.tries++
		s.nackAt = now
		r.scratch = append(r.scratch, q)
	}
	r.sendNACK()
}

func (r *reorderBuffer) deliver(seq uint16, ts uint32, marker bool, payload []byte, gap bool, arrival time.Time) {
	r.next = seq + 1
	r.out(ts, marker, payload, gap, arrival)
}

// drain delivers held packets that are now in order.
func (r *reorderBuffer) drain() {
	for r.held > 0 {
		s := &r.slots[r.next&r.mask]
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
	// The sink has copied the payload (depacketizers build frames in
	// their own slabs).
	r.free = append(r.free, s.buf[:0])
	s.buf = nil
}

// skipHole declares the holes up to the first held packet lost and
// delivers from there.
func (r *reorderBuffer) skipHole() {
	for i := 0; i < len(r.slots); i++ {
		seq := r.next + uint16(i)
		s := &r.slots[seq&r.mask]
		if s.used && s.seq == seq {
			r.take(s, true)
			r.drain()
			return
		}
		if s.hole && s.seq == seq {
			s.hole = false
			r.holes--
			r.c.lost++
			r.changed = true
		}
	}
	// Unreachable while the invariant (held slots are ahead of next) holds;
	// never loop forever on network input if it does not.
	r.clear()
}

// resync gives up on everything missing and restarts at seq.
func (r *reorderBuffer) resync(seq uint16, ts uint32, marker bool, payload []byte, arrival time.Time) {
	r.flushAll()
	r.clear()
	r.changed = true
	r.top = seq
	r.deliver(seq, ts, marker, payload, true, arrival)
}

func (r *reorderBuffer) clear() {
	for i := range r.slots {
		r.slots[i].used = false
		r.slots[i].hole = false
		if b := r.slots[i].buf; b != nil {
			r.free = append(r.free, b[:0])
			r.slots[i].buf = nil
		}
	}
	r.held = 0
	r.holes = 0
}

// tick runs the timers without a packet: the owner calls it when no
// packet came for reorderTick while packets are held.
func (r *reorderBuffer) tick(now time.Time) {
	if r.priming && !now.Before(r.primeUntil) {
		r.priming = false
		r.drain()
	}
	if !r.priming {
		r.maintain(now)
	} else {
		r.request(now)
	}
}

// flushAll delivers everything held, in order, giving up the holes.
func (r *reorderBuffer) flushAll() {
	for r.held > 0 {
		r.skipHole()
	}
}
