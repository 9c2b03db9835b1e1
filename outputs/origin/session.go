package origin

import (
	"bytes"
	"io"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/packager"
	"github.com/whipcast/whipcast/transmux"
)

// sessionQueue bounds the jobs a session holds for its writer goroutine. A
// full queue blocks the transmuxer (like the recorder's): a stalled spool
// disk shows as a slow consumer, never as a hole in the published stream.
const sessionQueue = 256

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
// run spools the jobs in order.
type session struct {
	o     *Origin
	base  string
	hls   *packager.HLSWindow
	dash  *packager.DASHWindow
	ch    chan job
	inits map[*media.Track]*transmux.Init
	order []*media.Track            // tracks in order of their first init
	segs  map[*media.Track][]string // segment keys in storage, oldest first
	index []byte                    // the last multivariant playlist spooled
	sent  map[string]bool           // init keys spooled
}

func newSession(o *Origin, s *media.Stream, base, epoch string) *session {
	ss := &session{
		o: o, base: base, ch: make(chan job, sessionQueue),
		inits: map[*media.Track]*transmux.Init{}, segs: map[*media.Track][]string{}, sent: map[string]bool{},
	}
	ss.dash = packager.NewDASHWindow(s.Name, epoch, o.set.Window, o.tm)
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
// playlist, the MPD and (when it changed) the multivariant playlist.
func (ss *session) OnSegment(seg *transmux.Segment) {
	// The windows keep a copy without the media: they only render, and a
	// kept (DVR) window would otherwise hold every byte of the publish.
	light := lighten(seg)
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
	ss.ch <- j
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
	ss.ch <- j
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
