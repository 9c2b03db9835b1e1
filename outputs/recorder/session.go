package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

type ioWriter = io.Writer

// event is one Sink call handed to the writer goroutine.
type event struct {
	init *transmux.Init
	seg  *transmux.Segment
	// gap marks the first segment after segments were dropped: it starts a
	// discontinuity in the recording's playlists and MPD.
	gap bool
}

// session records one publish of one stream. Its Sink methods run on the
// transmuxer's goroutine (under tap.mu) and never block: they queue for run,
// which writes, and when the queue is full they cut the recording off from
// the live stream (state retrying) instead of waiting for the disk. The
// fields below ch up to works are theirs.
type session struct {
	r     *Recorder
	dir   string
	info  sessionInfo
	names map[*media.Track]string
	ch    chan event

	sent    map[*media.Track]*transmux.Init // the init last queued, per track
	behind  bool                            // cut off: segments are dropped
	dropMSN uint64                          // the MSN being dropped while behind
	gapMSN  uint64                          // the MSN the recording resumed at
	gaps    int                             // times the recording resumed after a drop
	dropped int                             // segments dropped
	reason  string                          // why it is behind, in words; "" when live

	index  *os.File
	works  map[string]*os.File
	sizes  map[string]int64
	failed bool
}

func (r *Recorder) newSession(s *media.Stream, start time.Time) (*session, error) {
	id := strings.ReplaceAll(s.Name, "/", "_") + "-" + start.Format(StartLayout) + fmt.Sprintf("-%d", time.Now().UnixNano()%1e6)
	dir := filepath.Join(r.set.WorkDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Queue segments per track, and room for an init change on each.
	ss := &session{
		r: r, dir: dir, names: map[*media.Track]string{}, ch: make(chan event, (r.set.Queue+1)*max(len(s.Tracks), 1)),
		sent: map[*media.Track]*transmux.Init{}, works: map[string]*os.File{}, sizes: map[string]int64{},
	}
	ss.info = sessionInfo{Base: r.base(s.Name, start), Stream: s.Name, Start: start.Format(StartLayout)}
	count := map[media.Kind]int{}
	for _, t := range s.Tracks {
		name := t.Kind.String()
		if count[t.Kind] > 0 {
			name = fmt.Sprintf("%s%d", name, count[t.Kind])
		}
		count[t.Kind]++
		ss.names[t] = name
		ss.info.Tracks = append(ss.info.Tracks, name)
		ss.info.Kinds = append(ss.info.Kinds, t.Kind.String())
	}
	b, _ := json.Marshal(ss.info)
	if err := writeSynced(filepath.Join(dir, "session.json"), b); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "index.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	ss.index = f
	return ss, nil
}

func writeSynced(name string, b []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// OnInit implements transmux.Sink: an init is queued with the first
// segment that uses it (OnSegment), so that a recording cut off while the
// init changed still gets it when it resumes.
func (ss *session) OnInit(*transmux.Init) {}

// OnPart implements transmux.Sink: a recording is made of whole segments.
func (ss *session) OnPart(*transmux.Part) {}

// OnSegment implements transmux.Sink. It queues seg (after its init, when
// that was not queued yet) if there is room; otherwise the recording falls
// behind: this and the following segments are dropped until the writer has
// written everything queued, and the recording resumes at the first segment
// boundary (a new MSN, on every track) after that, marked as a
// discontinuity. A stuck disk thus costs the recording a gap, never the
// live stream its progress.
func (ss *session) OnSegment(seg *transmux.Segment) {
	if seg.Gap() {
		return
	}
	if ss.behind {
		if seg.MSN == ss.dropMSN || len(ss.ch) > 0 {
			ss.drop(seg)
			return
		}
		ss.resume(seg)
	}
	in, need := seg.Init, 1
	if ss.sent[in.Track] != in {
		need = 2
	}
	// Only this goroutine sends, so the room seen here stays (run only
	// takes); both sends below cannot block.
	if cap(ss.ch)-len(ss.ch) < need {
		ss.fallBehind(seg)
		return
	}
	if need == 2 {
		ss.ch <- event{init: in}
		ss.sent[in.Track] = in
	}
	ss.ch <- event{seg: seg, gap: ss.gaps > 0 && seg.MSN == ss.gapMSN}
}

// fallBehind cuts the recording off at seg.
func (ss *session) fallBehind(seg *transmux.Segment) {
	ss.behind = true
	ss.reason = fmt.Sprintf("storage too slow: %d objects wait to be written; segments are dropped from segment %d until they are, then the recording resumes at the next segment", len(ss.ch), seg.MSN)
	ss.r.log.Warn("recorder: storage does not keep up; dropping segments until it does", "stream", ss.info.Stream, "key", ss.info.Base,
		"queued", len(ss.ch), "msn", seg.MSN)
	ss.r.emit(Event{Kind: EventRetrying, Stream: ss.info.Stream, Key: ss.info.Base, Err: errors.New(ss.reason)})
	ss.drop(seg)
}

func (ss *session) drop(seg *transmux.Segment) {
	ss.dropMSN = seg.MSN
	ss.dropped++
	ss.r.dropped.Add(1)
}

// resume ends a drop at seg, the first segment of a new MSN.
func (ss *session) resume(seg *transmux.Segment) {
	ss.behind, ss.reason = false, ""
	ss.gaps++
	ss.gapMSN = seg.MSN
	ss.r.log.Info("recorder: storage caught up; recording again after a gap", "stream", ss.info.Stream, "key", ss.info.Base,
		"msn", seg.MSN, "dropped_segments", ss.dropped)
	ss.r.emit(Event{Kind: EventResumed, Stream: ss.info.Stream, Key: ss.info.Base, Dropped: ss.dropped})
}

// OnEnd implements transmux.Sink: closing the queue tells run to finalise
// once it has written what is queued (never a blocking send).
func (ss *session) OnEnd(error) { close(ss.ch) }

func (ss *session) run() {
	log := ss.r.log.With("stream", ss.info.Stream)
	defer func() {
		_ = ss.index.Close()
		for _, f := range ss.works {
			_ = f.Close()
		}
	}()
	for ev := range ss.ch {
		if ss.r.abandoned.Load() {
			continue // drain without writing, as after a crash
		}
		var err error
		switch {
		case ev.init != nil:
			err = ss.writeInit(ev.init)
		case ev.seg != nil:
			err = ss.writeSegment(ev.seg, ev.gap)
		}
		if err != nil && !ss.failed {
			// Keep going: a later segment may succeed (disk freed), and
			// what was written stays consistent.
			log.Error("recorder: write failed", "err", err)
			ss.failed = true
		} else if err == nil {
			ss.failed = false
		}
	}
	if ss.r.abandoned.Load() {
		return
	}
	_ = ss.index.Close()
	for _, f := range ss.works {
		_ = f.Close()
	}
	if err := ss.r.finalize(ss.dir); err != nil {
		log.Error("recorder: finalising failed; the session stays open for the next start", "err", err)
		ss.r.emit(Event{Kind: EventFailed, Stream: ss.info.Stream, Key: ss.info.Base, Err: err})
		return
	}
	log.Info("recorder: recording finalised", "key", ss.info.Base)
	ss.r.emit(Event{Kind: EventFinished, Stream: ss.info.Stream, Key: ss.info.Base})
}

func (ss *session) appendIndex(e entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := ss.index.Write(append(b, '\n')); err != nil {
		return err
	}
	return ss.index.Sync()
}

func (ss *session) writeInit(in *transmux.Init) error {
	track := ss.names[in.Track]
	file := fmt.Sprintf("%s_init_%d.mp4", track, in.Version)
	key := ss.info.Base + file
	if err := writeSynced(filepath.Join(ss.dir, file), in.Data); err != nil {
		return err
	}
	if err := ss.r.set.Spool.Put(key, in.Data); err != nil {
		return err
	}
	return ss.appendIndex(entry{
		Init: true, Track: track, Version: in.Version, Key: key, File: file, Codec: in.Codec,
		Timescale: in.Timescale, Width: in.Width, Height: in.Height, SampleRate: in.SampleRate, Channels: in.Channels,
	})
}

func (ss *session) writeSegment(seg *transmux.Segment, gap bool) error {
	track := ss.names[seg.Init.Track]
	key := fmt.Sprintf("%s%s_%06d.m4s", ss.info.Base, track, seg.MSN)
	if err := ss.r.set.Spool.PutFunc(key, func(w io.Writer) error {
		_, err := seg.WriteTo(w)
		return err
	}); err != nil {
		return err
	}
	file := track + ".cmaf"
	f := ss.works[track]
	if f == nil {
		var err error
		f, err = os.OpenFile(filepath.Join(ss.dir, file), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		st, _ := f.Stat()
		ss.works[track], ss.sizes[track] = f, st.Size()
	}
	off := ss.sizes[track]
	n, err := seg.WriteTo(f)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		// Cut back to the last good segment so offsets stay true.
		_ = f.Truncate(off)
		return err
	}
	ss.sizes[track] = off + n
	return ss.appendIndex(entry{
		Track: track, Version: seg.Init.Version, Key: key, File: file, MSN: seg.MSN,
		BMDT: seg.BaseMediaDecodeTime, Dur: seg.Duration, Disc: seg.Discontinuity || gap, Offset: off, Size: n,
	})
}
