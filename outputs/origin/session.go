package origin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/state"
	"github.com/whipcast/whipcast/packager"
	"github.com/whipcast/whipcast/transmux"
)

// object is one object to spool: bytes, or a segment written from its parts.
type object struct {
	key  string
	data []byte
	seg  *transmux.Segment
}

// job is what one Sink call leaves to spool, in order, then delete.
type job struct {
	puts []object
	dels []string
}

// session publishes one publish of one stream. Its Sink methods run on the
// transmuxer's goroutine: they update the windows and render the playlists
// there, so each rendering names exactly the segments queued before it;
// run spools the jobs in order. They never block: when the queue is full
// the publish falls behind (state retrying), and the segments it cannot
// queue enter the playlists as gaps (EXT-X-GAP, a hole in the MPD's
// SegmentTimeline) rather than as names of objects that are not there.
type session struct {
	o      *Origin
	stream string
	base   string
	hls    *packager.HLSWindow
	dash   *packager.DASHWindow
	ch     chan job

	behind  bool   // cut off: segments become gaps
	dropMSN uint64 // the MSN being dropped while behind
	dropped int    // segments dropped
	inits   map[*media.Track]*transmux.Init
	order   []*media.Track            // tracks in order of their first init
	segs    map[*media.Track][]string // segment keys in storage, oldest first
	index   []byte                    // the last multivariant playlist spooled
	sent    map[string]bool           // init keys spooled

	mu     sync.Mutex // the API's copy of the state, set here, read by Publishing
	active Active
}

// setState records the publish's state for the API.
func (ss *session) setState(st state.State, reason string) {
	ss.mu.Lock()
	ss.active.State, ss.active.Error, ss.active.DroppedSegments = st, reason, ss.dropped
	ss.mu.Unlock()
}

func (ss *session) snapshot() Active {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.active
}

func newSession(o *Origin, s *media.Stream, base, epoch string) *session {
	// Queue segments per track, plus the one slot that OnEnd's last
	// playlists always find free.
	ss := &session{
		o: o, stream: s.Name, base: base, ch: make(chan job, o.set.Queue*max(len(s.Tracks), 1)+1),
		inits: map[*media.Track]*transmux.Init{}, segs: map[*media.Track][]string{}, sent: map[string]bool{},
		active: Active{Key: base, Started: time.Now().UTC(), State: state.Starting},
	}
	ss.dash = packager.NewDASHWindow(s, epoch, o.set.Window, o.tm)
	ss.hls = packager.NewHLSWindow(s, o.set.Window, o.tm, ss.dash)
	return ss
}

// OnInit implements transmux.Sink.
func (ss *session) OnInit(in *transmux.Init) {
	ss.hls.OnInit(in)
	ss.dash.OnInit(in)
	if ss.inits[in.Track] == nil {
		ss.order = append(ss.order, in.Track)
	}
	ss.inits[in.Track] = in
}

// OnPart implements transmux.Sink: DASH opens its Periods on parts.
func (ss *session) OnPart(p *transmux.Part) { ss.dash.OnPart(p) }

// OnSegment implements transmux.Sink: the segment, then its track's media
// playlist, the MPD and (when it changed) the multivariant playlist. When
// the queue is full, or still not empty after it was, the segment becomes a
// gap and nothing is queued; the publish resumes at the first segment of a
// new MSN that finds the queue written.
func (ss *session) OnSegment(seg *transmux.Segment) {
	// The windows keep a copy without the media: they only render, and a
	// kept (DVR) window would otherwise hold every byte of the publish.
	light := lighten(seg)
	if !seg.Gap() && !ss.admit(seg) {
		light.Parts = nil
		ss.hls.OnSegment(light)
		ss.dash.OnSegment(light)
		return
	}
	ss.hls.OnSegment(light)
	ss.dash.OnSegment(light)
	var j job
	if !seg.Gap() {
		if key := ss.base + ss.dash.InitName(seg.Init); !ss.sent[key] {
			ss.sent[key] = true
			j.puts = append(j.puts, object{key: key, data: seg.Init.Data})
		}
		key := ss.base + ss.dash.SegmentName(seg)
		j.puts = append(j.puts, object{key: key, seg: seg})
		if !ss.o.set.Keep {
			j.dels = ss.expire(seg.Init.Track, key)
		}
	}
	if b := ss.hls.Media(seg.Init); b != nil {
		j.puts = append(j.puts, object{key: ss.base + ss.hls.PlaylistName(seg.Init), data: b})
	}
	j.puts = ss.appendManifests(j.puts)
	if len(ss.ch) < cap(ss.ch)-1 {
		ss.ch <- j // only this goroutine sends: the room stays
	}
}

// admit reports whether seg (with media) can be queued, falling behind or
// resuming as the queue says.
func (ss *session) admit(seg *transmux.Segment) bool {
	if ss.behind {
		if seg.MSN == ss.dropMSN || len(ss.ch) > 0 {
			ss.drop(seg)
			return false
		}
		ss.behind = false
		ss.setState(state.Live, "")
		ss.o.log.Info("origin: storage caught up; publishing again after a gap", "stream", ss.stream, "key", ss.base,
			"msn", seg.MSN, "dropped_segments", ss.dropped)
		ss.o.emit(Event{Kind: EventResumed, Stream: ss.stream, Key: ss.base, Dropped: ss.dropped})
	}
	if len(ss.ch) < cap(ss.ch)-1 {
		if ss.snapshot().State == state.Starting {
			ss.setState(state.Live, "")
		}
		return true
	}
	ss.behind = true
	reason := fmt.Sprintf("storage too slow: %d segments wait to be written; segments from %d on are published as gaps until they are", len(ss.ch), seg.MSN)
	ss.setState(state.Retrying, reason)
	ss.o.log.Warn("origin: storage does not keep up; segments become gaps until it does", "stream", ss.stream, "key", ss.base,
		"queued", len(ss.ch), "msn", seg.MSN)
	ss.o.emit(Event{Kind: EventRetrying, Stream: ss.stream, Key: ss.base, Err: errors.New(reason)})
	ss.drop(seg)
	return false
}

func (ss *session) drop(seg *transmux.Segment) {
	ss.dropMSN = seg.MSN
	ss.dropped++
	ss.o.dropped.Add(1)
	ss.mu.Lock()
	ss.active.DroppedSegments = ss.dropped
	ss.mu.Unlock()
}

// expire records key as t's newest segment in storage and returns the
// segments to delete: those out of the playlist for a whole window
// (2×window+1 are kept, RFC 8216bis 6.2.2).
func (ss *session) expire(t *media.Track, key string) []string {
	keys := append(ss.segs[t], key)
	n := len(keys) - (2*ss.o.set.Window + 1)
	if n <= 0 {
		ss.segs[t] = keys
		return nil
	}
	old := append([]string(nil), keys[:n]...)
	ss.segs[t] = append(keys[:0], keys[n:]...)
	return old
}

// appendManifests adds the MPD and, when it changed, index.m3u8.
func (ss *session) appendManifests(puts []object) []object {
	if b := ss.dash.MPD(); b != nil {
		puts = append(puts, object{key: ss.base + ss.dash.ManifestName(), data: b})
	}
	if b := ss.hls.Multivariant(); b != nil && !bytes.Equal(b, ss.index) {
		ss.index = b
		puts = append(puts, object{key: ss.base + "index.m3u8", data: b})
	}
	return puts
}

// OnEnd implements transmux.Sink: the playlists get EXT-X-ENDLIST and the
// MPD becomes static. The last window's segments stay in storage.
func (ss *session) OnEnd(error) {
	ss.hls.OnEnd(nil)
	ss.dash.OnEnd(nil)
	var j job
	for _, t := range ss.order {
		in := ss.inits[t]
		if b := ss.hls.Media(in); b != nil {
			j.puts = append(j.puts, object{key: ss.base + ss.hls.PlaylistName(in), data: b})
		}
	}
	j.puts = ss.appendManifests(j.puts)
	ss.ch <- j // the slot kept free for it: never blocks
	close(ss.ch)
}

func (ss *session) run() {
	sp := ss.o.set.Spool
	log := ss.o.log.With("key", ss.base)
	failed := false
	for j := range ss.ch {
		var err error
		for _, ob := range j.puts {
			if ob.seg != nil {
				seg := ob.seg
				err = sp.PutFunc(ob.key, func(w io.Writer) error {
					_, err := seg.WriteTo(w)
					return err
				})
			} else {
				err = sp.Put(ob.key, ob.data)
			}
			if err != nil {
				// Stop this job here: what follows may name what failed.
				break
			}
		}
		if err == nil {
			for _, k := range j.dels {
				if err = sp.Delete(k); err != nil {
					break
				}
			}
		}
		if err != nil && !failed {
			log.Error("origin: spool write failed", "err", err)
		}
		failed = err != nil
	}
	log.Info("origin: publish ended")
}

// lighten returns seg without its media bytes: one part with no payload
// stands for a segment that has samples.
func lighten(seg *transmux.Segment) *transmux.Segment {
	l := *seg
	if len(seg.Parts) > 0 {
		l.Parts = []*transmux.Part{{Init: seg.Init, MSN: seg.MSN, Duration: seg.Duration, Independent: true}}
	}
	return &l
}
