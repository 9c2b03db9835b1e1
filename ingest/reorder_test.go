package ingest

import (
	"slices"
	"testing"
	"time"
)

// The reorder buffer is clocked by the arrival times it is given: these
// tests are a fake clock.
var rbT0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func rbMS(n int) time.Duration { return time.Duration(n) * time.Millisecond }

type rbOut struct {
	seq uint16 // the test sets ts = seq
	gap bool
}

// rbHarness records what a reorder buffer delivers and requests.
type rbHarness struct {
	rb    *reorderBuffer
	got   []rbOut
	nacks [][]uint16
}

func newRBHarness(nack bool) *rbHarness {
	h := &rbHarness{}
	h.rb = newReorderBuffer(func(ts uint32, _ bool, _ []byte, gap bool, _ time.Time) {
		h.got = append(h.got, rbOut{uint16(ts), gap})
	})
	if nack {
		h.rb.nack = func(seqs []uint16) { h.nacks = append(h.nacks, slices.Clone(seqs)) }
	}
	return h
}

func (h *rbHarness) push(seq uint16, at time.Duration) { h.pushRTX(seq, false, at) }

func (h *rbHarness) pushRTX(seq uint16, rtx bool, at time.Duration) {
	h.rb.push(seq, uint32(seq), false, []byte{byte(seq)}, rtx, rbT0.Add(at))
	// The start-up hold and its requests (TestReorderBufferPriming) end
	// with the next packet, so the other tests see the steady state.
	if !h.rb.primeUntil.IsZero() {
		h.rb.primeUntil = time.Time{}
		h.nacks = nil
		h.rb.c = reorderCounters{}
	}
}

// ticks runs the timers every 5 ms over [from, to), as the reader's read
// deadline does while packets are held.
func (h *rbHarness) ticks(from, to time.Duration) {
	for at := from; at < to; at += rbMS(5) {
		h.rb.tick(rbT0.Add(at))
	}
}

func (h *rbHarness) delivered() []uint16 {
	var s []uint16
	for _, o := range h.got {
		s = append(s, o.seq)
	}
	return s
}

func TestReorderBufferOrder(t *testing.T) {
	tests := []struct {
		name string
		seqs []uint16
		want []rbOut
	}{
		{"in order", []uint16{1, 2, 3}, []rbOut{{1, false}, {2, false}, {3, false}}},
		{"swap", []uint16{1, 3, 2, 4}, []rbOut{{1, false}, {2, false}, {3, false}, {4, false}}},
		{"wrap", []uint16{65534, 0, 65535, 1}, []rbOut{{65534, false}, {65535, false}, {0, false}, {1, false}}},
		{"duplicate and late", []uint16{1, 2, 2, 1, 3}, []rbOut{{1, false}, {2, false}, {3, false}}},
		{"duplicate of a held packet", []uint16{1, 3, 3, 2}, []rbOut{{1, false}, {2, false}, {3, false}}},
		{"jump far ahead resyncs", []uint16{1, 2, 30000, 30001}, []rbOut{{1, false}, {2, false}, {30000, true}, {30001, false}}},
		{"jump far back resyncs", []uint16{30000, 30001, 1, 2}, []rbOut{{30000, false}, {30001, false}, {1, true}, {2, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newRBHarness(true)
			for _, s := range tc.seqs {
				h.push(s, 0)
			}
			if !slices.Equal(h.got, tc.want) {
				t.Fatalf("got %v, want %v", h.got, tc.want)
			}
		})
	}
}

// TestReorderBufferPriming: packets sent before the first one to arrive
// (reordered by jitter) are not thrown away as late: the first keyframe
// would be lost with them.
func TestReorderBufferPriming(t *testing.T) {
	h := newRBHarness(true)
	h.rb.push(5, 5, false, nil, false, rbT0)
	h.rb.push(3, 3, false, nil, false, rbT0.Add(rbMS(10)))
	h.rb.push(6, 6, false, nil, false, rbT0.Add(rbMS(20)))
	if len(h.got) != 0 {
		t.Fatalf("delivered %v while priming", h.got)
	}
	h.rb.push(4, 4, false, nil, false, rbT0.Add(rbMS(30))) // the hole left by 3
	h.rb.push(7, 7, false, nil, false, rbT0.Add(reorderPrime))
	want := []rbOut{{3, false}, {4, false}, {5, false}, {6, false}, {7, false}}
	if !slices.Equal(h.got, want) {
		t.Fatalf("got %v, want %v", h.got, want)
	}
	if len(h.nacks) != 2 || len(h.nacks[0]) != reorderPrimeNACK || h.nacks[0][reorderPrimeNACK-1] != 4 || !slices.Equal(h.nacks[1], []uint16{4}) {
		t.Fatalf("NACKs %v, want the %d before 5 and then 4", h.nacks, reorderPrimeNACK)
	}
}

func TestReorderBufferNACKsOnGap(t *testing.T) {
	h := newRBHarness(true)
	h.push(10, 0)
	h.push(13, rbMS(1)) // reveals 11 and 12
	if want := [][]uint16{{11, 12}}; !slices.EqualFunc(h.nacks, want, slices.Equal) {
		t.Fatalf("NACKs %v, want %v at once", h.nacks, want)
	}
	h.push(14, rbMS(2))
	if len(h.nacks) != 1 {
		t.Fatalf("re-requested before the retry interval: %v", h.nacks)
	}
	retry := h.rb.retry()
	h.push(15, retry+rbMS(1))
	if len(h.nacks) != 2 || !slices.Equal(h.nacks[1], []uint16{11, 12}) {
		t.Fatalf("NACKs %v: want 11 and 12 requested again after %v", h.nacks, retry)
	}
	c := h.rb.c
	if c.missing != 2 || c.nacks != 4 || c.nackPkts != 2 {
		t.Fatalf("counters %+v", c)
	}
}

func TestReorderBufferHoleFilledWithinWait(t *testing.T) {
	h := newRBHarness(true)
	wait := h.rb.wait()
	if wait < reorderMinWait || wait > reorderMaxWait {
		t.Fatalf("wait %v outside [%v, %v]", wait, reorderMinWait, reorderMaxWait)
	}
	h.push(1, 0)
	h.push(3, rbMS(1))
	for i := 4; i < 20; i++ {
		h.push(uint16(i), rbMS(i*10))
	}
	if got := h.delivered(); !slices.Equal(got, []uint16{1}) {
		t.Fatalf("delivered %v while 2 may still be repaired", got)
	}
	h.pushRTX(2, true, wait-rbMS(1)) // the repair, just in time
	want := []rbOut{{1, false}}
	for i := 2; i < 20; i++ {
		want = append(want, rbOut{uint16(i), false})
	}
	if !slices.Equal(h.got, want) {
		t.Fatalf("got %v, want %v", h.got, want)
	}
	if c := h.rb.c; c.missing != 1 || c.repaired != 1 || c.lost != 0 || c.rtx != 1 {
		t.Fatalf("counters %+v", c)
	}
	// Nothing held: the next packet takes the in-order path.
	h.push(20, wait)
	if h.rb.held != 0 || h.got[len(h.got)-1] != (rbOut{20, false}) {
		t.Fatalf("held %d, last %v", h.rb.held, h.got[len(h.got)-1])
	}
}

func TestReorderBufferHoleGivenUpAfterWait(t *testing.T) {
	h := newRBHarness(true)
	wait := h.rb.wait()
	h.push(10, 0)
	h.push(12, rbMS(1))
	h.push(13, rbMS(2))
	h.ticks(rbMS(3), wait)
	if len(h.got) != 1 {
		t.Fatalf("released early: %v", h.got)
	}
	h.push(14, rbMS(1)+wait)
	want := []rbOut{{10, false}, {12, true}, {13, false}, {14, false}}
	if !slices.Equal(h.got, want) {
		t.Fatalf("got %v, want %v", h.got, want)
	}
	h.push(11, wait+rbMS(100)) // too late
	if len(h.got) != 4 {
		t.Fatalf("late packet delivered: %v", h.got)
	}
	if c := h.rb.c; c.missing != 1 || c.lost != 1 || c.late != 1 || c.repaired != 0 {
		t.Fatalf("counters %+v", c)
	}
}

func TestReorderBufferRetriesCapped(t *testing.T) {
	h := newRBHarness(true)
	h.rb.srtt, h.rb.rttvar = rbMS(1), 0 // retry at the 10 ms floor, wait 150 ms
	h.push(1, 0)
	h.push(3, rbMS(1))
	for at := 2; at < 140; at++ {
		h.push(uint16(at+2), rbMS(at))
	}
	n := 0
	for _, seqs := range h.nacks {
		if slices.Contains(seqs, 2) {
			n++
		}
	}
	if n != nackMaxTries {
		t.Fatalf("2 was requested %d times, want the cap %d", n, nackMaxTries)
	}
}

func TestReorderBufferWaitFollowsRTT(t *testing.T) {
	h := newRBHarness(true)
	before := h.rb.wait()
	seq := uint16(100)
	at := time.Duration(0)
	h.push(seq, at)
	// Holes repaired 20 ms after their NACK, over and over.
	for range 50 {
		at += rbMS(5)
		h.push(seq+2, at) // reveals seq+1, NACKed now
		at += rbMS(20)
		h.pushRTX(seq+1, true, at)
		seq += 2
	}
	if got := h.rb.srtt; got < rbMS(18) || got > rbMS(22) {
		t.Fatalf("srtt %v, want about 20ms", got)
	}
	after := h.rb.wait()
	if after >= before {
		t.Fatalf("wait %v did not shrink from %v with a 20 ms round trip", after, before)
	}
	if after != reorderMinWait && after != nackWaitRetries*h.rb.retry()+nackJitterMargin {
		t.Fatalf("wait %v, retry %v", after, h.rb.retry())
	}
	// A far publisher: 400 ms round trips.
	for range 50 {
		at += rbMS(5)
		h.push(seq+2, at)
		at += rbMS(400)
		h.pushRTX(seq+1, true, at)
		seq += 2
	}
	if got := h.rb.wait(); got != reorderMaxWait {
		t.Fatalf("wait %v with a 400 ms round trip, want the %v ceiling", got, reorderMaxWait)
	}
	if h.rb.c.lost != 0 {
		t.Fatalf("lost %d", h.rb.c.lost)
	}
}

func TestReorderBufferRTTIgnoresLateOriginals(t *testing.T) {
	h := newRBHarness(true)
	h.push(1, 0)
	h.pushRTX(2, true, 0) // this sender uses RTX
	h.push(4, rbMS(1))
	h.push(3, rbMS(2)) // the reordered original, not a repair
	if h.rb.c.rttSample != 0 {
		t.Fatalf("a reordered original was taken as a %v round trip", h.rb.srtt)
	}
	if h.rb.c.repaired != 1 {
		t.Fatalf("repaired %d", h.rb.c.repaired)
	}
}

func TestReorderBufferWrapWithHoles(t *testing.T) {
	h := newRBHarness(true)
	h.push(65533, 0)
	h.push(1, rbMS(1)) // 65534, 65535, 0 missing across the wrap
	if len(h.nacks) != 1 || !slices.Equal(h.nacks[0], []uint16{65534, 65535, 0}) {
		t.Fatalf("NACKs %v", h.nacks)
	}
	h.pushRTX(65535, true, rbMS(10))
	h.pushRTX(0, true, rbMS(11))
	h.pushRTX(65534, true, rbMS(12))
	want := []uint16{65533, 65534, 65535, 0, 1}
	if got := h.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestReorderBufferBurstLongerThanWindow(t *testing.T) {
	h := newRBHarness(true)
	h.push(1, 0)
	h.push(3, rbMS(1))
	h.push(3+reorderSlots, rbMS(2)) // beyond what can be held
	want := []rbOut{{1, false}, {3, true}, {3 + reorderSlots, true}}
	if !slices.Equal(h.got, want) {
		t.Fatalf("got %v, want %v", h.got, want)
	}
	if h.rb.held != 0 || h.rb.holes != 0 {
		t.Fatalf("held %d holes %d after a resync", h.rb.held, h.rb.holes)
	}
}

// TestReorderBufferAudioNoNACK: the audio buffer only reorders, within its
// fixed wait.
func TestReorderBufferAudioNoNACK(t *testing.T) {
	var got []rbOut
	rb := newReorderBufferSize(func(ts uint32, _ bool, _ []byte, gap bool, _ time.Time) {
		got = append(got, rbOut{uint16(ts), gap})
	}, reorderAudioSlots)
	rb.fixedWait = reorderAudioWait
	rb.push(1, 1, false, nil, false, rbT0)
	rb.primeUntil = time.Time{}
	rb.push(3, 3, false, nil, false, rbT0.Add(rbMS(1)))
	rb.push(4, 4, false, nil, false, rbT0.Add(reorderAudioWait+rbMS(1)))
	want := []rbOut{{1, false}, {3, true}, {4, false}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if rb.c.nacks != 0 {
		t.Fatalf("audio NACKed")
	}
}

func TestReorderBufferInOrderAllocFree(t *testing.T) {
	rb := newReorderBuffer(func(uint32, bool, []byte, bool, time.Time) {})
	payload := make([]byte, 1200)
	rb.push(65535, 0, false, payload, false, rbT0)
	rb.push(65535, 0, false, payload, false, rbT0.Add(reorderPrime)) // ends priming
	seq := uint16(0)
	allocs := testing.AllocsPerRun(1000, func() {
		rb.push(seq, uint32(seq), false, payload, false, rbT0)
		seq++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per in-order packet", allocs)
	}
}

// TestReorderBufferTick: with no packet after a hole (the publisher
// stopped), the timers still give it up and deliver what was held.
func TestReorderBufferTick(t *testing.T) {
	h := newRBHarness(true)
	h.push(1, 0)
	h.push(3, rbMS(1))
	h.push(4, rbMS(2))
	h.rb.tick(rbT0.Add(h.rb.retry() + rbMS(2)))
	if len(h.nacks) != 2 {
		t.Fatalf("NACKs %v: want 2 re-requested by tick", h.nacks)
	}
	h.ticks(h.rb.retry()+rbMS(3), h.rb.wait()+rbMS(10))
	want := []rbOut{{1, false}, {3, true}, {4, false}}
	if !slices.Equal(h.got, want) {
		t.Fatalf("got %v, want %v", h.got, want)
	}
}

// TestReorderBufferReorderAllowance: on a stream with RTX whose originals
// come reordered, a hole is first NACKed once it is older than that
// reordering, so a reordered packet is not also retransmitted.
func TestReorderBufferReorderAllowance(t *testing.T) {
	h := newRBHarness(true)
	h.push(1, 0)
	h.pushRTX(2, true, 0) // RTX in use
	h.push(4, rbMS(1))    // 3 missing: NACKed at once (no reordering seen yet)
	h.push(3, rbMS(11))   // the original, 10 ms late
	if h.rb.reorderDelay != rbMS(10) {
		t.Fatalf("reorder delay %v, want 10ms", h.rb.reorderDelay)
	}
	n := len(h.nacks)
	h.push(6, rbMS(20)) // 5 missing
	h.push(5, rbMS(25)) // reordered by 5 ms, within the allowance
	h.push(7, rbMS(40))
	if len(h.nacks) != n {
		t.Fatalf("a reordered packet was NACKed: %v", h.nacks[n:])
	}
	h.push(9, rbMS(41)) // 8 missing for real
	h.push(10, rbMS(52))
	if len(h.nacks) != n+1 || !slices.Equal(h.nacks[n], []uint16{8}) {
		t.Fatalf("NACKs %v, want [8] once the allowance passed", h.nacks[n:])
	}
}

// TestReorderBufferBusyMachine: timers that run late (a loaded machine)
// still get every request out before a hole is given up, and nothing is
// held past reorderMaxWait.
func TestReorderBufferBusyMachine(t *testing.T) {
	h := newRBHarness(true)
	h.push(1, 0)
	h.push(3, rbMS(1)) // 2 requested once
	wait := h.rb.wait()
	h.rb.tick(rbT0.Add(wait + rbMS(10))) // the first run of the timers since
	if len(h.got) != 1 {
		t.Fatalf("given up after %d request(s): %v", len(h.nacks), h.got)
	}
	h.rb.tick(rbT0.Add(reorderMaxWait + rbMS(1)))
	if want := []rbOut{{1, false}, {3, true}}; !slices.Equal(h.got, want) {
		t.Fatalf("got %v, want %v after %v", h.got, want, reorderMaxWait)
	}
}

// TestReorderBufferPrimingRetries: a hole found during the start-up hold
// is requested again while it lasts, and not given up by it.
func TestReorderBufferPrimingRetries(t *testing.T) {
	h := newRBHarness(true)
	h.rb.push(10, 10, false, nil, false, rbT0)
	h.rb.push(12, 12, false, nil, false, rbT0.Add(rbMS(1))) // 11 missing
	for at := 2; at < 145; at += 5 {
		h.rb.tick(rbT0.Add(rbMS(at)))
	}
	n := 0
	for _, seqs := range h.nacks {
		if slices.Contains(seqs, 11) {
			n++
		}
	}
	if n < 1+int((145*time.Millisecond-rbMS(1))/h.rb.retry()) {
		t.Fatalf("11 requested %d times while priming (retry %v)", n, h.rb.retry())
	}
	h.rb.push(11, 11, false, nil, true, rbT0.Add(rbMS(146)))
	h.rb.tick(rbT0.Add(reorderPrime))
	if want := []rbOut{{10, false}, {11, false}, {12, false}}; !slices.Equal(h.got, want) {
		t.Fatalf("got %v, want %v", h.got, want)
	}
}

// Packets held behind holes all along the sequence space borrow buffers
// from a free list: the buffers number the most packets held at once (here
// 3), not every slot that ever held one, and holding reuses them without
// allocating.
func TestReorderBufferHoldBuffersRecycled(t *testing.T) {
	var delivered int
	rb := newReorderBuffer(func(uint32, bool, []byte, bool, time.Time) { delivered++ })
	rb.nack = func([]uint16) {}
	payload := make([]byte, 1200)
	rb.push(0, 0, false, payload, false, rbT0)
	rb.push(1, 1, false, payload, false, rbT0.Add(reorderPrime)) // ends priming
	seq := uint16(2)
	at := rbT0.Add(reorderPrime)
	// One round: seq is late; the 3 after it are held until it arrives.
	round := func() {
		for i := uint16(1); i <= 3; i++ {
			rb.push(seq+i, uint32(seq+i), false, payload, false, at)
		}
		rb.push(seq, uint32(seq), false, payload, false, at)
		seq += 4
		at = at.Add(time.Millisecond)
	}
	for range 2 * reorderSlots / 4 {
		round() // covers every slot twice
	}
	if rb.held != 0 || delivered != int(seq) {
		t.Fatalf("held %d, delivered %d of %d", rb.held, delivered, seq)
	}
	bufs := len(rb.free)
	for i := range rb.slots {
		if rb.slots[i].buf != nil {
			bufs++
		}
	}
	if bufs > 3 {
		t.Fatalf("%d hold buffers for at most 3 packets held at once", bufs)
	}
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Fatalf("%v allocations per round of holding", allocs)
	}
}
