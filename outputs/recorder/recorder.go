// Package recorder records published streams to storage: per publish
// session, under {prefix}/{stream}/{start}/, the CMAF init segments and
// segments of every track as they are produced, then on stop a VOD HLS
// playlist set, a static DASH MPD and one progressive MP4 over them.
//
// Every object goes through a storage.Spool, so an S3 outage or a restart
// loses nothing; a session's work directory in the spool directory keeps
// what finalising needs, so a session left open by a crash is finalised on
// the next start (Recover).
package recorder

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// StartLayout is the UTC time format of a session directory name.
const StartLayout = "20060102T150405Z"

// DefaultQueue is the default of Settings.Queue: about a minute of 2 s
// segments.
const DefaultQueue = 32

// Spool is what a Recorder writes every object through; *storage.Spool is
// one. Put and PutFunc may block while the disk is slow: the recorder
// calls them on its own goroutines only.
type Spool interface {
	// Dir is the spool directory (the default WorkDir is under it).
	Dir() string
	Put(key string, data []byte) error
	PutFunc(key string, write func(io.Writer) error) error
}

// Settings configure a Recorder.
type Settings struct {
	// Spool receives every object. Required.
	Spool Spool
	// Queue is how many segments per track a recording holds in memory
	// while its writes are slower than the stream. Beyond it the recording
	// falls behind (state retrying): segments are dropped until the queue
	// is written, and the recording resumes at the next segment with a
	// discontinuity. Default DefaultQueue.
	Queue int
	// Prefix is prepended to every key ("" for none); no leading or
	// trailing "/".
	Prefix string
	// Record reports whether a stream is recorded. Default: none is.
	Record func(stream string) bool
	// WorkDir holds the open sessions' work directories. Default:
	// Spool.Dir()/sessions.
	WorkDir string
	// Logger is the logger. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OnEvent, when set, is told when a recording starts, is finalised or
	// fails to be. It runs on the recorder's goroutines and must not block.
	OnEvent func(Event)
}

// Recorder is a transmux consumer that records streams. Close finalises.
type Recorder struct {
	set Settings
	log *slog.Logger

	wg        sync.WaitGroup
	abandoned atomic.Bool
	dropped   atomic.Uint64 // segments dropped by recordings that fell behind

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
	taps     map[string]*tap // by stream name: every stream being transmuxed
	sv       *transmux.Service
}

// New makes a Recorder.
func New(s Settings) (*Recorder, error) {
	if s.Spool == nil {
		return nil, errors.New("recorder: no spool")
	}
	if s.WorkDir == "" {
		s.WorkDir = filepath.Join(s.Spool.Dir(), "sessions")
	}
	if s.Record == nil {
		s.Record = func(string) bool { return false }
	}
	if s.Queue <= 0 {
		s.Queue = DefaultQueue
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.Prefix = strings.Trim(s.Prefix, "/")
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(s.WorkDir, 0o755); err != nil {
		return nil, err
	}
	return &Recorder{set: s, log: log, sessions: map[*session]struct{}{}, taps: map[string]*tap{}}, nil
}

// Attach records the streams sv transmuxes from now on (those Record
// accepts), sharing its CMAF with the other consumers. A stream Record
// accepts is packaged from its publish (Service.Pin); a recording started
// by Start keeps its stream packaged until Stop (Service.Acquire).
func (r *Recorder) Attach(sv *transmux.Service) {
	r.mu.Lock()
	r.sv = sv
	r.mu.Unlock()
	sv.AddConsumer(r.consume)
	sv.Pin(func(s *media.Stream) bool { return r.set.Record(s.Name) })
}

func (r *Recorder) consume(s *media.Stream) transmux.Sink {
	t := &tap{r: r, stream: s, inits: map[*media.Track]*transmux.Init{}}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.taps[s.Name] = t
	r.mu.Unlock()
	if r.set.Record(s.Name) {
		start := s.Started
		if start.IsZero() {
			start = r.set.Now()
		}
		t.mu.Lock()
		if _, err := t.startLocked(start); err != nil {
			r.log.Error("recorder: cannot record", "stream", s.Name, "err", err)
		}
		t.mu.Unlock()
	}
	return t
}

// base returns the key prefix of a session.
func (r *Recorder) base(stream string, start time.Time) string {
	b := stream + "/" + start.Format(StartLayout) + "/"
	if r.set.Prefix != "" {
		b = r.set.Prefix + "/" + b
	}
	return b
}

// Recover finalises the sessions a crash left open (their work directories
// are still there), in the background; Close waits for it.
func (r *Recorder) Recover() {
	dirs, err := os.ReadDir(r.set.WorkDir)
	if err != nil {
		r.log.Warn("recorder: cannot scan open sessions", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(r.set.WorkDir, d.Name())
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.finalize(dir); err != nil {
				r.log.Error("recorder: cannot finalise a session left open", "dir", dir, "err", err)
				return
			}
			r.log.Info("recorder: finalised a session left open by an earlier run", "dir", dir)
		}()
	}
}

// Close waits until every session has ended and been finalised (the
// transmux Service must be closed first, so every sink had OnEnd).
// Safe to call more than once.
func (r *Recorder) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
}

// Abandon makes every open session stop where it is, without finalising,
// as a crash would: its work directory and spooled objects stay for the
// next start's Recover. It exists for tests of crash recovery.
func (r *Recorder) Abandon() { r.abandoned.Store(true) }

// finalize renders the playlists, the MPD and the MP4 of a work directory,
// spools them, and removes the directory.
func (r *Recorder) finalize(dir string) error {
	info, tracks, err := readIndex(dir)
	if err != nil {
		return err
	}
	sp := r.set.Spool
	segs := 0
	for _, t := range tracks {
		segs += len(t.segs)
	}
	if segs > 0 {
		var dur float64
		mp4Key := info.Base + "recording.mp4"
		if err := sp.PutFunc(mp4Key, func(w ioWriter) error {
			d, err := writeMP4(w, dir, tracks)
			dur = d
			return err
		}); err != nil {
			return fmt.Errorf("mp4: %w", err)
		}
		start := -1.0
		for _, t := range tracks {
			if len(t.segs) == 0 {
				continue
			}
			s := float64(t.segs[0].BMDT) / float64(t.timescale(t.segs[0].Version))
			if start < 0 || s < start {
				start = s
			}
		}
		mpd, err := renderMPD(tracks, start, dur)
		if err != nil {
			return err
		}
		if err := sp.Put(info.Base+dashManifest, mpd); err != nil {
			return err
		}
		for _, t := range tracks {
			if len(t.segs) > 0 {
				if err := sp.Put(info.Base+mediaPlaylistName(t.name), []byte(renderMediaPlaylist(t))); err != nil {
					return err
				}
			}
		}
		// The multivariant playlist last: once it exists, all it names does.
		if err := sp.Put(info.Base+hlsMultivariant, []byte(renderMultivariant(tracks))); err != nil {
			return err
		}
	}
	return os.RemoveAll(dir)
}

// Sessions counts the sessions being recorded.
func (r *Recorder) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Dropped counts the segments recordings dropped because storage did not
// keep up (for metrics), since start.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }
