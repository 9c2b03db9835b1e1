// Package origin publishes live HLS and DASH to storage, so that a bucket is
// the origin of a CDN: under {prefix}/{stream}/ the multivariant playlist
// index.m3u8, one media playlist per track, the MPD manifest.mpd, and the
// CMAF init segments and segments they name, written as they are produced.
//
// The playlists and the MPD are the packager's (packager.HLSWindow and
// DASHWindow), without what a bucket cannot do: no LL-HLS parts, preload
// hints or blocking reload (RFC 8216bis 6.2.5.2 needs a server that holds a
// request), and no DASH segment announced while in production. One object
// per segment serves both formats.
//
// Order is what makes it safe for a CDN: every object goes through the
// storage.Spool, which uploads in order, so a playlist is never in the
// bucket before a segment it names; a playlist is overwritten in place,
// which S3 does atomically (a GET sees the old object or the new one, never
// a mix); a segment is deleted only after the playlist that dropped it, and
// only once it has been out of the playlist for a whole window (RFC 8216bis
// 6.2.2 asks that it stay available for its duration plus the playlist's).
package origin

import (
	"errors"
	"io"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/state"
	"github.com/whipcast/whipcast/storage"
	"github.com/whipcast/whipcast/transmux"
)

// DefaultWindow is the default of Settings.Window.
const DefaultWindow = 7

// Cache-Control of what the origin writes: segments and init segments never
// change under their name (names carry a per-publish epoch), playlists and
// the MPD change with every segment.
const (
	CacheImmutable = "public, max-age=31536000, immutable"
	CachePlaylist  = "public, max-age=1"
)

// Settings configure an Origin.
type Settings struct {
	// Spool receives every object. Required.
	Spool Spool
	// Prefix is prepended to every key ("" for none), e.g. "live".
	Prefix string
	// Publish reports whether a stream is published. Default: none is.
	Publish func(stream string) bool
	// Window is how many segments each playlist lists. Default 7.
	Window int
	// Keep keeps every segment in storage and in the playlists (DVR)
	// instead of deleting what left the window. Default false.
	Keep bool
	// Queue is how many segments per track a publish holds in memory while
	// its writes are slower than the stream. Beyond it the publish falls
	// behind (Event EventRetrying): segments enter the playlists as gaps,
	// with nothing written for them, until the queue is written. Default
	// DefaultQueue.
	Queue int
	// Logger is the logger. Default: discard.
	Logger *slog.Logger
	// OnEvent, when set, is told when a publish falls behind and when it
	// resumes. It runs on the transmuxer's goroutine and must not block.
	OnEvent func(Event)
}

// DefaultQueue is the default of Settings.Queue: about a minute of 2 s
// segments.
const DefaultQueue = 32

// Spool is what an Origin writes every object through; *storage.Spool is
// one. Its methods may block while the disk is slow: the origin calls them
// on its own goroutines only.
type Spool interface {
	Put(key string, data []byte) error
	PutFunc(key string, write func(io.Writer) error) error
	Delete(key string) error
}

// EventKind tells an Origin's events apart.
type EventKind int

// Origin events, passed to Settings.OnEvent.
const (
	// EventRetrying: storage did not keep up with a publish; its segments
	// become gaps until it does (Err says so in words).
	EventRetrying EventKind = iota + 1
	// EventResumed: storage caught up and the publish goes on after
	// Dropped segments in all became gaps.
	EventResumed
)

// Event is one event of a publish to the origin.
type Event struct {
	Kind   EventKind
	Stream string
	// Key is the publish's key prefix.
	Key string
	// Err is set for EventRetrying.
	Err error
	// Dropped counts the publish's segments that became gaps so far.
	Dropped int
}

// keepWindow is the window of Keep: every segment of any realistic publish
// (24 days of 2 s segments); the windows hold no media bytes.
const keepWindow = 1 << 20

// Origin is a transmux consumer that publishes live streams to storage.
type Origin struct {
	set Settings
	log *slog.Logger
	tm  transmux.Settings

	epochs  atomic.Uint64
	dropped atomic.Uint64 // segments that became gaps for want of storage speed
	wg      sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	live     int
	sessions map[string]*session // the publish of each stream name
}

// Active is the state of one stream's publish to the origin, for the API:
// the outputs' one state model (outputs/state), as a recording's.
type Active struct {
	// Key is the key prefix of the publish's objects, ending in "/".
	Key string `json:"key"`
	// Started is when the publish started.
	Started time.Time `json:"started"`
	// State is starting until the first segment is queued, live while
	// every segment is, retrying while storage does not keep up (segments
	// become gaps until it does).
	State state.State `json:"state"`
	// Error says why the state is retrying.
	Error string `json:"error,omitempty"`
	// DroppedSegments counts the segments published as gaps.
	DroppedSegments int `json:"dropped_segments,omitempty"`
}

// Publishing returns the state of stream's publish, if it has one.
func (o *Origin) Publishing(stream string) (Active, bool) {
	o.mu.Lock()
	ss := o.sessions[stream]
	o.mu.Unlock()
	if ss == nil {
		return Active{}, false
	}
	return ss.snapshot(), true
}

// New makes an Origin.
func New(s Settings) (*Origin, error) {
	if s.Spool == nil {
		return nil, errors.New("origin: no spool")
	}
	if s.Publish == nil {
		s.Publish = func(string) bool { return false }
	}
	if s.Window <= 0 {
		s.Window = DefaultWindow
	}
	if s.Queue <= 0 {
		s.Queue = DefaultQueue
	}
	if s.Keep {
		s.Window = keepWindow
	}
	s.Prefix = strings.Trim(s.Prefix, "/")
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Origin{set: s, log: log}
	o.epochs.Store(uint64(time.Now().UnixMilli()))
	return o, nil
}

// Attach publishes the streams sv transmuxes from now on (those Publish
// accepts), sharing its CMAF with the other consumers.
func (o *Origin) Attach(sv *transmux.Service) {
	o.mu.Lock()
	o.tm = sv.Settings()
	o.mu.Unlock()
	sv.AddConsumer(o.consume)
	// A CDN reads the storage, not us: the stream is packaged from its
	// publish to its end, players or not.
	sv.Pin(func(s *media.Stream) bool { return o.set.Publish(s.Name) })
}

func (o *Origin) consume(s *media.Stream) transmux.Sink {
	if !o.set.Publish(s.Name) {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	base := s.Name + "/"
	if o.set.Prefix != "" {
		base = o.set.Prefix + "/" + base
	}
	ss := newSession(o, s, base, strconv.FormatUint(o.epochs.Add(1), 36))
	o.live++
	if o.sessions == nil {
		o.sessions = map[string]*session{}
	}
	o.sessions[s.Name] = ss
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		ss.run()
		o.mu.Lock()
		o.live--
		if o.sessions[s.Name] == ss {
			delete(o.sessions, s.Name)
		}
		o.mu.Unlock()
	}()
	o.log.Info("origin: publishing", "stream", s.Name, "key", base)
	return ss
}

// Live counts the streams being published.
func (o *Origin) Live() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.live
}

// Close waits until every publish has ended and its last playlists are
// spooled (the transmux Service must be closed first, so every session had
// OnEnd). Safe to call more than once.
func (o *Origin) Close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.wg.Wait()
}

// Meta is the HTTP metadata of an object the origin writes: Content-Type
// and Cache-Control a CDN passes on.
func Meta(key string) storage.Meta {
	switch path.Ext(key) {
	case ".m3u8", ".mpd":
		return storage.Meta{ContentType: storage.TypeByKey(key), CacheControl: CachePlaylist}
	case ".m4s", ".mp4":
		ct := "video/mp4"
		if strings.HasPrefix(path.Base(key), "audio") {
			ct = "audio/mp4"
		}
		return storage.Meta{ContentType: ct, CacheControl: CacheImmutable}
	}
	return storage.Meta{ContentType: storage.TypeByKey(key)}
}

// Dropped counts the segments publishes left out (published as gaps)
// because storage did not keep up, since start (for metrics).
func (o *Origin) Dropped() uint64 { return o.dropped.Load() }

func (o *Origin) emit(e Event) {
	if o.set.OnEvent != nil {
		o.set.OnEvent(e)
	}
}
