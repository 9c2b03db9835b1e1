package ingest

import "time"

// The repair window. A hole (a missing sequence number) is NACKed the
// moment a later packet reveals it (or, on a stream whose packets come
// reordered, once it is older than the reordering seen), NACKed again every retry interval while
// it stays open, and declared lost only when its wait has passed. Both are
// sized from the round trip measured on our own NACKs (NACK sent → repair
// received), so a far publisher gets more time and a near one loses less
// latency:
//
//	retry = clamp(srtt + 4·rttvar, nackRetryMin, nackRetryMax)
//	wait  = clamp(nackWaitRetries·retry + nackJitterMargin + reorderDelay, reorderMinWait, reorderMaxWait)
//
// At 10 % loss with resends lost at the same rate, a packet needs about
// five requests before the chance that every one failed is below 10⁻⁵;
// nackWaitRetries retries fit in the wait.
const (
	// reorderSlots bounds how many packets ahead of a hole are held (a
	// power of two: slots are indexed by seq & (reorderSlots-1)). 1024
	// packets are ~3 s of a 2.5 Mb/s stream, more than reorderMaxWait.
	reorderSlots = 1024
	// reorderAudioSlots is the smaller window of the audio track, which is
	// not NACKed: it only undoes network reordering.
	reorderAudioSlots = 64
	reorderMinWait    = 150 * time.Millisecond
	reorderMaxWait    = time.Second
	// reorderAudioWait bounds how long audio waits for a reordered packet.
	reorderAudioWait = 60 * time.Millisecond
	nackRetryMin     = 10 * time.Millisecond
	nackRetryMax     = 500 * time.Millisecond
	nackJitterMargin = 50 * time.Millisecond
	nackWaitRetries  = 5
	// nackMaxTries caps the requests for one packet.
	nackMaxTries = 10
	// rttInitial and rttVarInitial are assumed before the first sample: a
	// 50 ms round trip gives a 150 ms retry and a 800 ms wait, shrinking as
	// soon as repairs are measured.
	rttInitial    = 50 * time.Millisecond
	rttVarInitial = 25 * time.Millisecond
	// nackScanEvery bounds how often open holes are scanned for a resend.
	nackScanEvery = 5 * time.Millisecond
	// reorderPrime is how long the first packets are held before any is
	// delivered, so packets sent before the first one to arrive (reordered
	// by jitter, or lost and repaired) still count: otherwise the first
	// keyframe's head is "late" and everything waits for the next one
	// (with a sender that ignores PLI, a whole GOP).
	reorderPrime = reorderMinWait
	// reorderPrimeNACK is how many sequence numbers before the first one
	// to arrive are requested at once: a lost first packet (the SPS/PPS
	// before the first IDR) is otherwise never missed. A sender that never
	// sent them ignores the request.
	reorderPrimeNACK = 16
	// nackReorderMax caps the reordering allowance: the first request for
	// a hole waits for the reordering seen on this stream (originals that
	// came late, while retransmissions come as RTX), up to this.
	nackReorderMax = 40 * time.Millisecond
	// reorderTick is how often the timers run while packets are held and
	// none arrive.
	reorderTick = 20 * time.Millisecond
)

// packetSink receives packets in sequence order. gap is true when one or
// more packets before this one were lost. payload is only valid during the
// call.
type packetSink func(ts uint32, marker bool, payload []byte, gap bool, arrival time.Time)

// nackSink asks the sender to retransmit seqs (sent as one RTCP NACK). seqs
// is only valid during the call.
type nackSink func(seqs []uint16)

type reorderSlot struct {
	used    bool // holds the packet seq
	hole    bool // seq is missing (between next and top, not used)
	tries   uint8
	seq     uint16
	ts      uint32
	marker  bool
	arrival time.Time
	found   time.Time // hole: when a later packet revealed it
	nackAt  time.Time // hole: the last request
	buf     []byte
}

// reorderCounters are a reorder buffer's totals.
type reorderCounters struct {
	missing   uint64 // sequence numbers found missing (lost before repair)
	lost      uint64 // holes given up on (lost after repair)
	repaired  uint64 // holes filled before their wait ran out
	rtx       uint64 // retransmissions received (RTX packets, or late fills without RTX)
	late      uint64 // packets that came after their hole was given up, and duplicates
	nacks     uint64 // sequence numbers requested (each retry counts)
	nackPkts  uint64 // RTCP NACK packets sent
	rttSample uint64 // RTT samples taken
}

// reorderBuffer puts RTP packets back in sequence-number order, handling
// 16-bit wraps (RFC 3550 §A.1), NACKs the holes it finds and waits for
// their repair as long as the measured round trip says a repair can still
// come. Packets that arrive in order while nothing is held go straight
// through with no copy and no allocation; only packets behind a hole are
// copied into a slot, whose buffer is reused.
//
// It is driven by push (the time is the packet's arrival) and, while
// packets are held, by tick. One goroutine owns it (the track's reader).
type reorderBuffer struct {
	out     packetSink
	nack    nackSink // nil: no NACKs (audio)
	started bool
	// priming: nothing delivered yet, and a packet older than next moves
	// next back (until primeUntil).
	priming    bool
	primeUntil time.Time
	next       uint16 // next sequence number to deliver
	top        uint16 // highest sequence number seen
	held       int
	holes      int // open holes between next and top
	slots      []reorderSlot
	mask       uint16
	// fixedWait, when set, replaces the RTT-sized wait (audio).
	fixedWait time.Duration

	srtt, rttvar time.Duration
	// reorderDelay is how late reordered originals come (a decaying peak):
	// a hole is first NACKed this long after it shows, so jitter does not
	// make every reordered packet be sent twice.
	reorderDelay time.Duration
	lastScan     time.Time
	scratch      []uint16
	// free holds the packet buffers of delivered slots. A slot borrows one
	// only while it holds a packet, so the buffers number the most packets
	// held at once, not every slot a hole ever passed over (up to 1.5 MiB
	// of a video track's 1024 slots).
	free [][]byte

	c reorderCounters
	// changed is set when c moved; the owner clears it after publishing.
	changed bool
}

func newReorderBuffer(out packetSink) *reorderBuffer {
	return newReorderBufferSize(out, reorderSlots)
}

// newReorderBufferSize makes a buffer of slots slots (a power of two).
func newReorderBufferSize(out packetSink, slots int) *reorderBuffer {
	return &reorderBuffer{
		out:    out,
		slots:  make([]reorderSlot, slots),
		mask:   uint16(slots - 1),
		srtt:   rttInitial,
		rttvar: rttVarInitial,
	}
}

// retry is the interval between two requests for one packet.
func (r *reorderBuffer) retry() time.Duration {
	return min(max(r.srtt+4*r.rttvar, nackRetryMin), nackRetryMax)
}

// wait is how long a hole is waited for before it is declared lost.
func (r *reorderBuffer) wait() time.Duration {
	if r.fixedWait > 0 {
		return r.fixedWait
	}
	return min(max(nackWaitRetries*r.retry()+nackJitterMargin+r.reorderDelay, reorderMinWait), reorderMaxWait)
}

// rttSample folds one NACK→repair delay into the estimate (RFC 6298).
func (r *reorderBuffer) rttSample(d time.Duration) {
	if d < 0 {
		return
	}
	if r.c.rttSample == 0 {
		r.srtt, r.rttvar = d, d/2
	} else {
		diff := r.srtt - d
		if diff < 0 {
			diff = -diff
		}
		r.rttvar = (3*r.rttvar + diff) / 4
		r.srtt = (7*r.srtt + d) / 8
	}
	r.c.rttSample++
}

// reorderSample folds in how late a reordered original came: the peak
// is taken at once and decays by 1/32 per sample.
func (r *reorderBuffer) reorderSample(d time.Duration) {
	r.reorderDelay -= r.reorderDelay / 32
	r.reorderDelay = min(max(r.reorderDelay, d), nackReorderMax)
}

// push takes one packet. rtx says it came as an RTX retransmission. It
// calls out zero or more times, and nack at most once.
func (r *reorderBuffer) push(seq uint16, ts uint32, marker bool, payload []byte, rtx bool, arrival time.Time) {
	if !r.started {
		r.started = true
		r.next, r.top = seq, seq-1
		r.priming = true
		r.primeUntil = arrival.Add(reorderPrime)
		if r.nack != nil {
			r.scratch = r.scratch[:0]
			for q := seq - reorderPrimeNACK; q != seq; q++ {
				r.scratch = append(r.scratch, q)
			}
			r.sendNACK()
		}
	}
	d := int16(seq - r.next)
	if r.priming {
		if !arrival.Before(r.primeUntil) {
			r.priming = false
		} else if d < 0 && int(-d) < len(r.slots)/2 && r.held > 0 && int(r.top-seq) < len(r.slots) {
			// Sent before the first packet to arrive: start earlier. The
			// numbers between are holes like any other.
			s := &r.slots[seq&r.mask]
			r.hold(s, seq, ts, marker, payload, arrival)
			r.openHolesBefore(seq+1, r.next, arrival)
			r.next = seq
			return
		}
	}
	if d == 0 && r.held == 0 && !r.priming {
		// The in-order path: nothing held, no hole open.
		r.deliver(seq, ts, marker, payload, false, arrival)
		r.top = seq
		if rtx {
			r.c.rtx++
			r.changed = true
		}
		return
	}
	switch {
	case d < 0:
		// Its place has been passed: a duplicate, or a repair that came
		// after its hole was given up. A jump far back is a sender
		// restart; resynchronise on it.
		if int(d) > -4*len(r.slots) {
			r.c.late++
			if rtx {
				r.c.rtx++
			}
			r.changed = true
			return
		}
		r.resync(seq, ts, marker, payload, arrival)
		return
	case int(d) >= len(r.slots):
		// Too far ahead to hold: a burst longer than the window. Give up
		// on everything missing.
		r.resync(seq, ts, marker, payload, arrival)
		return
	}
	s := &r.slots[seq&r.mask]
	if s.used && s.seq == seq {
		r.c.late++ // duplicate
		if rtx {
			r.c.rtx++
		}
		r.changed = true
		return
	}
	if rtx {
		r.c.rtx++
		r.changed = true
	}
	if int16(seq-r.top) > 0 {
		// Beyond the highest seen: the numbers skipped are new holes.
		r.openHoles(r.top+1, seq, arrival)
		r.top = seq
	} else if s.hole && s.seq == seq {
		// A hole filled: by a retransmission or a reordered original.
		s.hole = false
		r.holes--
		r.c.repaired++
		r.changed = true
		// Karn: only a packet requested once gives an unambiguous delay;
		// with RTX only a retransmission does (not the late original).
		if s.tries == 1 && (rtx || !r.sawRTX()) {
			r.rttSample(arrival.Sub(s.nackAt))
		}
		if !rtx && r.sawRTX() {
			r.reorderSample(arrival.Sub(s.found))
		}
	}
	if d == 0 && !r.priming {
		r.deliver(seq, ts, marker, payload, false, arrival)
		r.drain()
	} else {
		r.hold(s, seq, ts, marker, payload, arrival)
	}
	if !r.priming {
		r.drain()
		r.maintain(arrival)
	} else {
		r.request(arrival) // holes are re-requested, not given up, while priming
	}
}

// openHolesBefore marks from..to-1 missing where nothing is held (while
// priming, next moves back over them).
func (r *reorderBuffer) openHolesBefore(from, to uint16, now time.Time) {
	r.scratch = r.scratch[:0]
	for q := from; q != to; q++ {
		s := &r.slots[q&r.mask]
		if (s.used || s.hole) && s.seq == q {
			continue
		}
		r.markHole(s, q, now)
	}
	r.changed = true
	r.sendNACK()
}

// sawRTX reports whether retransmissions come as RTX, so late originals
// can be told from repairs.
func (r *reorderBuffer) sawRTX() bool { return r.c.rtx > 0 }

func (r *reorderBuffer) hold(s *reorderSlot, seq uint16, ts uint32, marker bool, payload []byte, arrival time.Time) {
	s.used = true
	s.hole = false
	s.seq = seq
	s.ts = ts
	s.marker = marker
	s.arrival = arrival
	if s.buf == nil {
		if n := len(r.free); n > 0 {
			s.buf, r.free = r.free[n-1], r.free[:n-1]
		} else {
			s.buf = make([]byte, 0, 1500)
		}
	}
	s.buf = append(s.buf[:0], payload...)
	r.held++
}

// openHoles marks from..to-1 missing and NACKs them at once.
func (r *reorderBuffer) openHoles(from, to uint16, now time.Time) {
	r.scratch = r.scratch[:0]
	for q := from; q != to; q++ {
		r.markHole(&r.slots[q&r.mask], q, now)
	}
	r.changed = true
	r.sendNACK()
}

// markHole records q missing and queues its first request in scratch.
func (r *reorderBuffer) markHole(s *reorderSlot, q uint16, now time.Time) {
	s.used = false
	s.hole = true
	s.seq = q
	s.found = now
	s.tries = 0
	r.holes++
	r.c.missing++
	if r.nack != nil && r.reorderDelay == 0 {
		s.tries = 1
		s.nackAt = now
		r.scratch = append(r.scratch, q)
	}
}

func (r *reorderBuffer) sendNACK() {
	if len(r.scratch) == 0 || r.nack == nil {
		return
	}
	r.c.nacks += uint64(len(r.scratch))
	r.c.nackPkts++
	r.nack(r.scratch)
	r.scratch = r.scratch[:0]
}
