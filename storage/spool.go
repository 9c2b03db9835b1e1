package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Defaults of SpoolSettings.
const (
	DefaultSpoolQueue = 1024
)

// SpoolSettings configure a Spool. Zero fields mean their default; NewSpool
// keeps its own copy.
type SpoolSettings struct {
	// Dir is the spool directory. Required. Objects wait in Dir/data/<key>.
	Dir string
	// Queue bounds the keys held in memory for upload. Beyond it, objects
	// still go to disk, and the uploader re-scans the directory when its
	// queue runs dry, so nothing is lost. Default DefaultSpoolQueue.
	Queue int
	// Backoff paces the retries of a failing upload.
	Backoff Backoff
	// Meta gives the metadata of a key. Default: Content-Type from the
	// extension (TypeByKey), no Cache-Control.
	Meta func(key string) Meta
	// Logger receives upload failures (rolled up: the first failure of a
	// run of failures and the recovery). Default: discard.
	Logger *slog.Logger
}

// SpoolStatus is a Spool's state for the API, events and metrics.
type SpoolStatus struct {
	// State is "live" (nothing failing), "retrying" (the last upload failed
	// and is being retried) or "stopped".
	State string
	// Pending counts objects on disk not yet confirmed uploaded.
	Pending int
	// Uploaded counts confirmed uploads since start.
	Uploaded uint64
	// Failures counts failed upload attempts since start.
	Failures uint64
	// LastError is the last upload or write failure in words ("" once a
	// later one succeeded).
	LastError string
	// Forbidden is set while the store refuses the credentials (HTTP 403).
	Forbidden bool
	// DiskFull is set while writes to the spool fail for lack of space.
	DiskFull bool
}

// Spool makes writes to a Store durable before they are uploaded: Put writes
// the object to the spool directory (fsync'd, atomically renamed) and
// returns; one uploader goroutine per Spool sends objects to the Store in
// order, retrying with backoff, and deletes each file only once its upload
// is confirmed. The directory is the truth: NewSpool scans it, so objects
// left by a crash or an unfinished shutdown are uploaded on the next start.
//
// Order: an object is uploaded only after every object spooled before it
// (by its latest Put) has been, and a Delete runs only after every object
// spooled before it. A live playlist spooled after its segments is
// therefore never in the store before them (outputs/origin relies on it).
// The order survives the in-memory queue overflowing and a restart: each
// spooled file's modification time is set to a strictly increasing stamp,
// and a scan of the directory queues files by it.
type Spool struct {
	store Store
	set   SpoolSettings
	data  string
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever pending changes
	queue    []op
	queued   map[string]bool // keys with a put in queue
	overflow bool            // objects wait on disk only: the next scan queues them
	pending  int
	deletes  int       // queued or running deletes
	stamp    time.Time // modification time of the newest spooled file
	status   SpoolStatus
	closed   bool
}

// op is one queued upload, or with del one removal from the store. file,
// when set, holds a pinned older version of key (see PutFunc).
type op struct {
	key  string
	del  bool
	file string
	fd   *os.File // the version to upload, opened when the op is taken
}

// NewSpool opens (or creates) the spool directory, counts what a previous
// run left there and starts the uploader.
func NewSpool(store Store, s SpoolSettings) (*Spool, error) {
	if s.Dir == "" {
		return nil, errors.New("storage: spool dir is empty")
	}
	if s.Queue <= 0 {
		s.Queue = DefaultSpoolQueue
	}
	if s.Meta == nil {
		s.Meta = func(key string) Meta { return Meta{ContentType: TypeByKey(key)} }
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sp := &Spool{
		store:   store,
		set:     s,
		data:    filepath.Join(s.Dir, "data"),
		log:     log,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		changed: make(chan struct{}),
		queued:  make(map[string]bool),
	}
	if err := os.MkdirAll(sp.data, 0o755); err != nil {
		return nil, diskErr(err)
	}
	removeTemps(sp.data)
	keys, newest, err := listByAge(sp.data)
	if err != nil {
		return nil, fmt.Errorf("storage: scan spool: %w", err)
	}
	sp.stamp = newest
	sp.pending = len(keys)
	sp.overflow = len(keys) > 0
	sp.status.State = "live"
	if len(keys) > 0 {
		log.Info("spool: uploading objects left by an earlier run", "objects", len(keys))
	}
	sp.ctx, sp.cancel = context.WithCancel(context.Background())
	go sp.run()
	sp.poke()
	return sp, nil
}

// removeTemps deletes half-written files of a crashed run.
func removeTemps(root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") {
			_ = os.Remove(p)
		}
		return nil
	})
}

// Dir returns the spool directory.
func (sp *Spool) Dir() string { return sp.set.Dir }

// Put spools data under key and queues it for upload.
func (sp *Spool) Put(key string, data []byte) error {
	return sp.PutFunc(key, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// PutFunc spools what write writes under key and queues it for upload. An
// object spooled again under the same key before its upload replaces it.
func (sp *Spool) PutFunc(key string, write func(io.Writer) error) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	name := filepath.Join(sp.data, filepath.FromSlash(key))
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return ErrClosed
	}
	sp.mu.Unlock()
	tmp, err := writeTemp(name, write)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	existed := false
	if err == nil {
		// Under mu, so the uploader's check-and-delete cannot interleave,
		// and stamps follow the order of commits.
		sp.pinLocked(key, name)
		_, statErr := os.Stat(name)
		existed = statErr == nil
		sp.stampLocked(tmp)
		err = commitTemp(tmp, name)
	}
	if err != nil {
		sp.status.DiskFull = errors.Is(err, ErrDiskFull)
		sp.status.LastError = err.Error()
		return fmt.Errorf("storage: spool %s: %w", key, err)
	}
	if sp.status.DiskFull {
		sp.status.DiskFull = false
		sp.status.LastError = ""
	}
	if !existed {
		sp.pending++
		sp.notifyLocked()
	}
	sp.enqueueLocked(op{key: key})
	return nil
}

// Delete removes key from the store once everything spooled before has been
// uploaded, a version of key still waiting in the spool included (what was
// spooled before may name it: it must reach the store first). Unlike
// puts, deletes are kept in memory only: one queued while the queue
// overflows, or not yet run at a crash or Close, is lost (the object stays
// in the store).
func (sp *Spool) Delete(key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return ErrClosed
	}
	sp.enqueueLocked(op{key: key, del: true})
	return nil
}

// pinLocked keeps the queued version of key in its place when a new one
// replaces it before its upload and it is the only version queued: what was
// spooled after it may need some version of key in the store (a
// multivariant playlist names a media playlist), and the new version must
// not go before what was spooled in between (a media playlist names a new
// segment). The old file moves aside and is uploaded where it was queued;
// later versions coalesce into one. A pinned file is a temporary file: a
// restart drops it (the newest version is still uploaded).
func (sp *Spool) pinLocked(key, name string) {
	if !sp.queued[key] {
		return
	}
	idx := -1
	for i, q := range sp.queue {
		if q.key == key && !q.del {
			if q.file != "" {
				return // already pinned: the newer versions coalesce
			}
			idx = i
		}
	}
	if idx < 0 {
		return
	}
	side := filepath.Join(filepath.Dir(name), fmt.Sprintf(".tmp-pin-%d-%s", time.Now().UnixNano(), filepath.Base(name)))
	if os.Rename(name, side) != nil {
		return
	}
	sp.queue[idx].file = side
	delete(sp.queued, key)
}

// stampLocked sets name's modification time to the next spool stamp, so a
// scan of the directory sees files in the order they were spooled even
// when the clock's steps are coarse.
func (sp *Spool) stampLocked(name string) {
	now := time.Now()
	if !now.After(sp.stamp) {
		now = sp.stamp.Add(time.Microsecond)
	}
	sp.stamp = now
	_ = os.Chtimes(name, now, now)
}

// enqueueLocked appends o. A put of a key already queued moves to the end:
// the file holds its newest version, which must not overtake what was
// spooled after the older one; the deletes queued after the older one move
// with it, as they may rely on it being in the store (a playlist that no
// longer names what they delete). A put also cancels a queued delete of its
// key. Beyond the queue bound, or while older objects wait on disk only, a
// put stays on disk for the next scan (which keeps the order) and deletes
// are dropped.
func (sp *Spool) enqueueLocked(o op) {
	var carried []op
	if !o.del {
		keep := make([]op, 0, len(sp.queue))
		found := false
		for _, q := range sp.queue {
			switch {
			case q.key == o.key && q.file == "":
				found = found || !q.del
				if q.del {
					sp.deleteDoneLocked()
				}
			case found && q.del:
				carried = append(carried, q)
			default:
				keep = append(keep, q)
			}
		}
		sp.queue = keep
		delete(sp.queued, o.key)
	}
	if sp.overflow || len(sp.queue) >= sp.set.Queue {
		if !o.del {
			sp.overflow = true
		} else {
			carried = append(carried, o)
		}
		for _, d := range carried {
			sp.log.Warn("spool: delete dropped while uploads are behind", "key", d.key)
			if d != o {
				sp.deleteDoneLocked()
			}
		}
		return
	}
	if o.del {
		sp.deletes++
	}
	sp.queue = append(sp.queue, o)
	sp.queue = append(sp.queue, carried...)
	if !o.del {
		sp.queued[o.key] = true
	}
	sp.poke()
}

func (sp *Spool) deleteDoneLocked() {
	sp.deletes--
	sp.notifyLocked()
}

func (sp *Spool) poke() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

func (sp *Spool) notifyLocked() {
	close(sp.changed)
	sp.changed = make(chan struct{})
}

// Status returns the current state.
func (sp *Spool) Status() SpoolStatus {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	st := sp.status
	st.Pending = sp.pending
	return st
}

// Pending counts objects not yet confirmed uploaded.
func (sp *Spool) Pending() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.pending
}

// Drain waits until every spooled object is uploaded (and every queued
// delete done) or ctx is done; it
// returns ctx's error in the second case. Objects left stay in the spool.
func (sp *Spool) Drain(ctx context.Context) error {
	for {
		sp.mu.Lock()
		n, ch := sp.pending, sp.changed
		idle := n == 0 && sp.deletes == 0
		sp.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ch:
		case <-sp.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("storage: spool drain with %d objects left: %w", n, ctx.Err())
		}
	}
}

// Close stops the uploader, abandoning an upload in flight; what is not
// uploaded stays on disk for the next start. Safe to call more than once.
func (sp *Spool) Close() {
	sp.mu.Lock()
	sp.closed = true
	sp.status.State = "stopped"
	sp.mu.Unlock()
	sp.cancel()
	<-sp.done
}
