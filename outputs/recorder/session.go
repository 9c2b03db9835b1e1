package recorder

import (
	"encoding/json"
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

// sessionQueue bounds the events a session holds for its writer goroutine.
// A full queue blocks the transmuxer rather than lose a segment: a stalled
// disk must show as a slow consumer, never as a hole in a recording.
const sessionQueue = 256

// event is one Sink call handed to the writer goroutine.
type event struct {
	init *transmux.Init
	seg  *transmux.Segment
	end  bool
}

// session records one publish of one stream. Its Sink methods run on the
// transmuxer's goroutine and only queue; run writes.
type session struct {
	r      *Recorder
	dir    string
	info   sessionInfo
	names  map[*media.Track]string
	ch     chan event
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
	ss := &session{
		r: r, dir: dir, names: map[*media.Track]string{}, ch: make(chan event, sessionQueue),
		works: map[string]*os.File{}, sizes: map[string]int64{},
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

// OnInit implements transmux.Sink.
func (ss *session) OnInit(in *transmux.Init) { ss.ch <- event{init: in} }

// OnPart implements transmux.Sink: a recording is made of whole segments.
func (ss *session) OnPart(*transmux.Part) {}

// OnSegment implements transmux.Sink.
func (ss *session) OnSegment(seg *transmux.Segment) {
	if !seg.Gap() {
		ss.ch <- event{seg: seg}
	}
}

// OnEnd implements transmux.Sink.
func (ss *session) OnEnd(error) {
	ss.ch <- event{end: true}
	close(ss.ch)
}

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
			err = ss.writeSegment(ev.seg)
		case ev.end:
			_ = ss.index.Close()
			for _, f := range ss.works {
				_ = f.Close()
			}
			if err := ss.r.finalize(ss.dir); err != nil {
				log.Error("recorder: finalising failed; the session stays open for the next start", "err", err)
				ss.r.emit(Event{Kind: EventFailed, Stream: ss.info.Stream, Key: ss.info.Base, Err: err})
				continue
			}
			log.Info("recorder: recording finalised", "key", ss.info.Base)
			ss.r.emit(Event{Kind: EventFinished, Stream: ss.info.Stream, Key: ss.info.Base})
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

func (ss *session) writeSegment(seg *transmux.Segment) error {
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
		BMDT: seg.BaseMediaDecodeTime, Dur: seg.Duration, Disc: seg.Discontinuity, Offset: off, Size: n,
	})
}
