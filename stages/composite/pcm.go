package composite

import "math"

// pcmBuffer holds one participant's decoded audio, interleaved stereo,
// placed on the composite's sample clock. Packets that follow each other
// within slack of where the previous one ended are laid end to end, so the
// jitter of capture timestamps never clicks; a larger jump (a gap in the
// sender's audio, a clock step) re-anchors.
type pcmBuffer struct {
	start int64     // sample position of buf[0]
	buf   []float32 // interleaved L R
	next  int64     // where the next packet is expected; -1 before the first
	level float64   // smoothed RMS of what was mixed, for the speaker layout
}

const (
	// slack is how far (in samples) a packet may land from where the
	// previous one ended and still be laid end to end: 40 ms.
	slack = 1920
	// maxAhead bounds how far ahead of the mix a packet may be placed: 2 s.
	maxAhead = 96000
)

func newPCMBuffer() *pcmBuffer { return &pcmBuffer{next: -1} }

func (b *pcmBuffer) end() int64 { return b.start + int64(len(b.buf)/2) }

// put places pcm (interleaved stereo) at sample position pos; mixed is the
// position the mix has reached (everything before it is gone).
func (b *pcmBuffer) put(pos int64, pcm []float32, mixed int64) {
	n := int64(len(pcm) / 2)
	if n == 0 {
		return
	}
	if b.next >= 0 && pos > b.next-slack && pos < b.next+slack {
		pos = b.next
	}
	b.next = pos + n
	if pos+n <= mixed || pos > mixed+maxAhead {
		return // too late to be heard, or absurdly early
	}
	if len(b.buf) == 0 {
		b.start = max(pos, mixed)
	}
	if pos < b.start { // its head is already mixed (or overlaps): cut it
		cut := b.start - pos
		if cut >= n {
			return
		}
		pcm, pos = pcm[2*cut:], b.start
	}
	if end := b.end(); pos > end {
		b.buf = append(b.buf, make([]float32, 2*(pos-end))...)
	} else if pos < end {
		// Overlap after a re-anchor backwards: the newer samples win.
		b.buf = b.buf[:2*(pos-b.start)]
	}
	b.buf = append(b.buf, pcm...)
}

// mixInto adds the samples for positions [from, from+len(dst)/2) to dst,
// drops everything before the end of that range and updates the level.
func (b *pcmBuffer) mixInto(dst []float32, from int64) {
	n := int64(len(dst) / 2)
	to := from + n
	var sum float64
	for s := max(from, b.start); s < min(to, b.end()); s++ {
		i := 2 * (s - b.start)
		l, r := b.buf[i], b.buf[i+1]
		dst[2*(s-from)] += l
		dst[2*(s-from)+1] += r
		sum += float64(l*l + r*r)
	}
	rms := math.Sqrt(sum / float64(2*n))
	// ~0.5 s time constant at 20 ms blocks.
	b.level += (rms - b.level) * 0.04
	b.drop(to)
}

// skip drops everything before position to, unheard (a muted participant),
// and lets the level decay as if silent.
func (b *pcmBuffer) skip(to int64) {
	b.level *= 0.96
	b.drop(to)
}

// drop forgets the samples before position to.
func (b *pcmBuffer) drop(to int64) {
	if to >= b.end() {
		b.buf, b.start = b.buf[:0], to
		return
	}
	if to > b.start {
		cut := to - b.start
		b.buf = append(b.buf[:0], b.buf[2*cut:]...)
		b.start = to
	}
}

// limiter keeps the sum of the participants below ceiling without hard
// clipping: it looks one block ahead, so the gain is already down when a
// loud block starts, ramps the gain linearly within a block (no steps, no
// clicks) and recovers slowly (release ~0.3 s).
type limiter struct {
	ceiling float32
	gain    float32
	bufs    [2][]float32
	held    int     // index of the block waiting for the next one (lookahead)
	heldMax float32 // its target gain
	primed  bool
}

const (
	ceiling = 0.95
	// release multiplies the gain per 20 ms block while it recovers.
	release = 1.07
)

func newLimiter() *limiter { return &limiter{ceiling: ceiling, gain: 1} }

// target is the gain that brings block's peak to the ceiling (1 if it is
// below already).
func (l *limiter) target(block []float32) float32 {
	var peak float32
	for _, v := range block {
		peak = max(peak, v, -v)
	}
	if peak <= l.ceiling {
		return 1
	}
	return l.ceiling / peak
}

// process takes the next mixed block and returns the previous one limited
// (nil for the first call). The returned slice is valid until the next call.
func (l *limiter) process(block []float32) []float32 {
	t := l.target(block)
	if !l.primed {
		l.primed = true
		l.bufs[l.held] = append(l.bufs[l.held][:0], block...)
		l.heldMax = t
		l.gain = min(l.gain, t)
		return nil
	}
	out := l.bufs[l.held]
	// The gain starts at or below the held block's target (the previous
	// call saw to it), may rise by the release step at most, and ends at or
	// below the next block's target, ramping linearly in between.
	end := min(l.gain*release, l.heldMax, t, 1)
	frames := len(out) / 2
	for i := 0; i < frames; i++ {
		g := l.gain + (end-l.gain)*float32(i+1)/float32(frames)
		out[2*i] = max(-1, min(1, out[2*i]*g))
		out[2*i+1] = max(-1, min(1, out[2*i+1]*g))
	}
	l.gain = end
	l.held ^= 1
	l.bufs[l.held] = append(l.bufs[l.held][:0], block...)
	l.heldMax = t
	return out
}
