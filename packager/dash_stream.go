package packager

import (
	"context"
	"errors"
	"math/bits"
	"strconv"
	"sync"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// maxDASHPeriods bounds the Periods one MPD keeps: a publisher that
// reconnects again and again must not grow it without end.
const maxDASHPeriods = 3

// dashStream is the DASH state of one stream name: its Periods, each one
// publish (or one init change inside a publish), fed by dashSinks and read
// by HTTP handlers. It holds the transmuxer's Segment and Part values, never
// copies of their bytes.
type dashStream struct {
	d    *DASH
	name string

	mu      sync.Mutex
	ast     time.Time // availabilityStartTime: zero until the first part
	epoch   string    // the current publish
	want    int       // tracks the current publish's transmuxer carries
	anchor  time.Time // wall time of stream time 0 of the current publish
	names   map[*media.Track]string
	periods []*dashPeriod
	ended   bool
	notify  chan struct{} // closed and replaced on every change
	changed time.Time     // MPD@publishTime
	maxSeg  float64       // longest segment so far, seconds
	mpd     []byte        // cached MPD, nil when stale
	direct  bool          // UTCTiming carries the time itself (DASHWindow: no clock URL)
}

// dashPeriod is one Period (ISO/IEC 23009-1 5.3.2): one publish, or the
// part of a publish after an init change (new SPS: a new Period rather than
// a mid-Representation init switch, which players handle badly).
type dashPeriod struct {
	id       string
	epoch    string
	firstMSN uint64
	start    time.Duration // Period@start, from availabilityStartTime
	origin   float64       // stream time, seconds, at Period@start
	// originAt/originScale is origin exactly: the tfdt and timescale of the
	// part that opened the Period, so presentationTimeOffset is that tfdt to
	// the tick, not a float rounded down one tick short.
	originAt, originScale uint64
	// duration is Period@duration once a later Period has opened: the sum
	// of the lead track's segments, so the closed Period ends exactly where
	// its media does and the next one starts there.
	duration time.Duration
	tracks   []*dashTrack
	want     int // tracks its publish carries (dashStream.want then)
}

// contiguous is how far apart, on the wall clock, one Period's end and the
// media of the next may be for the next to start exactly at that end (an
// init change mid-publish; a reconnect whose timestamps go on): rounding
// of the anchor, never a real gap, which keeps its place on the clock.
const contiguous = 100 * time.Millisecond

// dashTrack is one Representation's state within a Period.
type dashTrack struct {
	t     *media.Track
	name  string
	init  *transmux.Init
	segs  []*transmux.Segment // complete, oldest first, at most Window
	parts []*transmux.Part    // the segment in production; never truncated in place
	cur   uint64              // MSN of the segment in production
	next  uint64              // start time of that segment, track timescale
}

func newDASHStream(d *DASH, name, epoch string, want int) *dashStream {
	return &dashStream{d: d, name: name, epoch: epoch, want: want, names: map[*media.Track]string{}, notify: make(chan struct{})}
}

// restart takes a new publish into an ended stream still in its grace
// period; false when the stream is still live (the old publish has not
// ended yet: a fresh state replaces it).
func (s *dashStream) restart(epoch string, want int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		return false
	}
	s.epoch, s.want, s.ended, s.anchor = epoch, want, false, time.Time{}
	s.names = map[*media.Track]string{}
	s.touch()
	return true
}

func (s *dashStream) streamName() string { return s.name }

func (s *dashStream) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// touch wakes waiting requests and marks the MPD stale. Called with s.mu held.
func (s *dashStream) touch() {
	close(s.notify)
	s.notify = make(chan struct{})
	s.mpd = nil
	s.changed = s.d.now()
}

// dashSink is the transmux.Sink of one publish: events of a publish that a
// newer one has replaced are dropped.
type dashSink struct {
	s     *dashStream
	epoch string
}

// OnInit implements transmux.Sink. Inits are taken from the parts that use
// them, which tells which Period they belong to.
func (k *dashSink) OnInit(*transmux.Init) {}

// OnPart implements transmux.Sink.
func (k *dashSink) OnPart(p *transmux.Part) {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != k.epoch {
		return
	}
	ts := float64(p.Init.Timescale)
	if s.anchor.IsZero() {
		// The part is available now, so its end is "now" on the wall clock:
		// segment availability times follow (ISO/IEC 23009-1 5.3.9.5.3).
		s.anchor = s.d.now().Add(-seconds(float64(p.BaseMediaDecodeTime+p.Duration) / ts))
	}
	per := s.periodFor(p)
	t := per.track(p.Init.Track)
	if t == nil {
		t = &dashTrack{t: p.Init.Track, name: s.trackName(p.Init.Track), init: p.Init}
		per.tracks = append(per.tracks, t)
	}
	if p.MSN != t.cur || len(t.parts) > 0 && t.parts[0].MSN != p.MSN {
		t.parts = nil
		t.cur = p.MSN
	}
	if len(t.parts) == 0 {
		t.next = p.BaseMediaDecodeTime
	}
	t.parts = append(t.parts, p)
	s.touch()
}

// periodFor returns the Period of the current publish that p belongs to,
// starting a new one for the first part of a publish or of an init change.
// Called with s.mu held.
func (s *dashStream) periodFor(p *transmux.Part) *dashPeriod {
	var cur *dashPeriod
	for _, per := range s.periods {
		if per.epoch == s.epoch && per.firstMSN <= p.MSN {
			cur = per
		}
	}
	if cur != nil && !(p.Discontinuity && p.Index == 0 && p.MSN > cur.firstMSN) {
		return cur
	}
	origin := float64(p.BaseMediaDecodeTime) / float64(p.Init.Timescale)
	if s.ast.IsZero() {
		s.ast = s.anchor.Add(seconds(origin)).Truncate(time.Millisecond)
	}
	start := max(s.anchor.Add(seconds(origin)).Sub(s.ast), 0)
	if n := len(s.periods); n > 0 {
		prev := s.periods[n-1]
		prev.duration = prev.exactDuration()
		end := prev.start + prev.duration
		if start-end < contiguous {
			start = end
		}
	} else {
		start = start.Truncate(time.Millisecond)
	}
	per := &dashPeriod{
		id:       s.epoch + "-" + strconv.FormatUint(p.MSN, 10),
		epoch:    s.epoch,
		firstMSN: p.MSN,
		start:    start,
		origin:   origin,
		originAt: p.BaseMediaDecodeTime, originScale: uint64(p.Init.Timescale),
		want: s.want,
	}
	s.periods = append(s.periods, per)
	if n := len(s.periods) - maxDASHPeriods; n > 0 {
		clear(s.periods[:n])
		s.periods = append(s.periods[:0], s.periods[n:]...)
	}
	return per
}

func (per *dashPeriod) track(mt *media.Track) *dashTrack {
	for _, t := range per.tracks {
		if t.t == mt {
			return t
		}
	}
	return nil
}

func (per *dashPeriod) trackNamed(name string) *dashTrack {
	for _, t := range per.tracks {
		if t.name == name {
			return t
		}
	}
	return nil
}

// pto is the Period's presentationTimeOffset in timescale ts: its origin,
// rounded down where the timescales differ.
func (per *dashPeriod) pto(ts uint64) uint64 {
	if per.originScale == 0 || per.originScale == ts {
		return per.originAt
	}
	hi, lo := bits.Mul64(per.originAt, ts)
	q, _ := bits.Div64(hi, lo, per.originScale)
	return q
}

// lead is the track whose segments measure the Period: the first video
// track (the transmuxer cuts on it), else the first track.
func (per *dashPeriod) lead() *dashTrack {
	for _, t := range per.tracks {
		if t.t.Kind == media.KindVideo {
			return t
		}
	}
	if len(per.tracks) > 0 {
		return per.tracks[0]
	}
	return nil
}

// exactDuration is where the lead track's last complete segment ends,
// from the Period's start; end() when it has none.
func (per *dashPeriod) exactDuration() time.Duration {
	if t := per.lead(); t != nil && len(t.segs) > 0 {
		seg := t.segs[len(t.segs)-1]
		ts := uint64(t.init.Timescale)
		end := seg.BaseMediaDecodeTime + seg.Duration
		if pto := per.pto(ts); end > pto {
			// In ticks, then seconds: the closed Period lasts exactly its
			// segments in the lead track's own timescale.
			return time.Duration(bigMulDiv(end-pto, uint64(time.Second), ts))
		}
		return 0
	}
	return per.end() - per.start
}

// open reports whether the Period still grows: the newest Period of the
// live publish. Called with s.mu held.
func (s *dashStream) open(per *dashPeriod) bool {
	n := len(s.periods)
	return !s.ended && n > 0 && s.periods[n-1] == per && per.epoch == s.epoch
}

// end is the Period's end so far, from availabilityStartTime: its start
// plus the furthest any track has reached.
func (per *dashPeriod) end() time.Duration {
	far := per.origin
	for _, t := range per.tracks {
		ts := float64(t.init.Timescale)
		if n := len(t.parts); n > 0 {
			p := t.parts[n-1]
			far = max(far, float64(p.BaseMediaDecodeTime+p.Duration)/ts)
		}
		if n := len(t.segs); n > 0 {
			seg := t.segs[n-1]
			far = max(far, float64(seg.BaseMediaDecodeTime+seg.Duration)/ts)
		}
	}
	return per.start + seconds(far-per.origin)
}

// trackName: "video", "audio", then "video2", "audio2"... per publish.
func (s *dashStream) trackName(mt *media.Track) string {
	if n, ok := s.names[mt]; ok {
		return n
	}
	n := 0
	for other := range s.names {
		if other.Kind == mt.Kind {
			n++
		}
	}
	name := mt.Kind.String()
	if n > 0 {
		name += strconv.Itoa(n + 1)
	}
	s.names[mt] = name
	return name
}

// OnSegment implements transmux.Sink.
func (k *dashSink) OnSegment(seg *transmux.Segment) {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != k.epoch || seg.Gap() {
		return
	}
	var t *dashTrack
	for _, per := range s.periods {
		if per.epoch == s.epoch && per.firstMSN <= seg.MSN {
			t = per.track(seg.Init.Track)
		}
	}
	if t == nil {
		return
	}
	t.segs = append(t.segs, seg)
	if n := len(t.segs) - s.d.set.Window; n > 0 {
		clear(t.segs[:n])
		t.segs = append(t.segs[:0], t.segs[n:]...)
	}
	t.parts = nil
	t.cur = seg.MSN + 1
	t.next = seg.BaseMediaDecodeTime + seg.Duration
	s.maxSeg = max(s.maxSeg, seg.Seconds())
	s.dropOldPeriods()
	s.touch()
}

// dropOldPeriods forgets earlier Periods once the newest holds a full
// window: the time-shift buffer no longer reaches them. Called with s.mu held.
func (s *dashStream) dropOldPeriods() {
	n := len(s.periods)
	if n < 2 {
		return
	}
	for _, t := range s.periods[n-1].tracks {
		if len(t.segs) >= s.d.set.Window {
			clear(s.periods[:n-1])
			s.periods = append(s.periods[:0], s.periods[n-1])
			return
		}
	}
}

// OnEnd implements transmux.Sink. A run stopped for want of players
// (transmux.ErrIdle) drops the state at once, as HLS does.
func (k *dashSink) OnEnd(err error) {
	s := k.s
	s.mu.Lock()
	if s.epoch != k.epoch {
		s.mu.Unlock()
		return
	}
	if errors.Is(err, transmux.ErrIdle) {
		s.mu.Unlock()
		s.d.drop(s)
		return
	}
	s.ended = true
	for _, per := range s.periods {
		for _, t := range per.tracks {
			t.parts = nil // everything complete was flushed as segments
		}
	}
	s.touch()
	s.mu.Unlock()
	s.d.scheduleRemoval(s, s.d.set.EndGrace)
}

// wait blocks until ready (called with s.mu held) is true, the timeout
// passes, the request goes away or the packager closes. It returns with
// s.mu held and ready's last answer.
func (s *dashStream) wait(ctx context.Context, ready func() bool) bool {
	return waitLocked(ctx, &s.mu, func() <-chan struct{} { return s.notify }, s.d.ctx.Done(), s.d.set.BlockTimeout, ready)
}

// waitStart is wait for an MPD that has no segment yet, bounded by
// StartTimeout: a stream whose packaging the request just started.
func (s *dashStream) waitStart(ctx context.Context, ready func() bool) bool {
	return waitLocked(ctx, &s.mu, func() <-chan struct{} { return s.notify }, s.d.ctx.Done(), s.d.set.StartTimeout, ready)
}

// hasSegments reports whether any track has a complete segment.
func (s *dashStream) hasSegments() bool {
	for _, per := range s.periods {
		for _, t := range per.tracks {
			if len(t.segs) > 0 {
				return true
			}
		}
	}
	return false
}

// carried is how many of s's tracks a transmuxer carries.
func carried(s *media.Stream) int {
	n := 0
	for _, t := range s.Tracks {
		if transmux.Carries(t) {
			n++
		}
	}
	return n
}

// leadSegments counts the current publish's complete segments, over its
// Periods, of the track that has most in each. Called with s.mu held.
func (s *dashStream) leadSegments() int {
	n := 0
	for _, per := range s.periods {
		if per.epoch != s.epoch {
			continue
		}
		m := 0
		for _, t := range per.tracks {
			m = max(m, len(t.segs))
		}
		n += m
	}
	return n
}

// hasComplete reports whether a Period of the current publish lists every
// track the publish carries (complete). Called with s.mu held.
func (s *dashStream) hasComplete() bool {
	for _, per := range s.periods {
		if per.epoch == s.epoch && s.complete(per) {
			return true
		}
	}
	return false
}

// complete reports whether per lists a segment of every track its publish
// carries. Called with s.mu held.
func (s *dashStream) complete(per *dashPeriod) bool {
	return s.listable(per, per.want, !s.d.set.DisableLowLatency)
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// bigMulDiv is a*b/c without overflow of the product.
func bigMulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}
