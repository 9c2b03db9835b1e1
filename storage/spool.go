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
	queue    []string
	queued   map[string]bool
	overflow bool
	pending  int
	status   SpoolStatus
	closed   bool
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
	keys, err := listDir(sp.data, "")
	if err != nil {
		return nil, fmt.Errorf("storage: scan spool: %w", err)
	}
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
		// Under mu, so the uploader's check-and-delete cannot interleave.
		_, statErr := os.Stat(name)
		existed = statErr == nil
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
	sp.enqueueLocked(key)
	return nil
}

func (sp *Spool) enqueueLocked(key string) {
	if sp.queued[key] {
		return
	}
	if len(sp.queue) >= sp.set.Queue {
		sp.overflow = true
		return
	}
	sp.queue = append(sp.queue, key)
	sp.queued[key] = true
	sp.poke()
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

// Drain waits until every spooled object is uploaded or ctx is done; it
// returns ctx's error in the second case. Objects left stay in the spool.
func (sp *Spool) Drain(ctx context.Context) error {
	for {
		sp.mu.Lock()
		n, ch := sp.pending, sp.changed
		sp.mu.Unlock()
		if n == 0 {
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

// next returns the next key to upload, re-scanning the directory when the
// in-memory queue overflowed; false once closed.
func (sp *Spool) next() (string, bool) {
	for {
		sp.mu.Lock()
		if len(sp.queue) > 0 {
			key := sp.queue[0]
			sp.queue = sp.queue[1:]
			delete(sp.queued, key)
			sp.mu.Unlock()
			return key, true
		}
		rescan := sp.overflow
		sp.overflow = false
		sp.mu.Unlock()
		if rescan {
			keys, err := listDir(sp.data, "")
			if err != nil {
				sp.log.Warn("spool: scan failed", "err", err)
			}
			sp.mu.Lock()
			for _, k := range keys {
				sp.enqueueLocked(k)
			}
			sp.mu.Unlock()
			continue
		}
		select {
		case <-sp.wake:
		case <-sp.ctx.Done():
			return "", false
		}
	}
}

func (sp *Spool) run() {
	defer close(sp.done)
	failing := false
	for {
		key, ok := sp.next()
		if !ok {
			return
		}
		for attempt := 0; ; attempt++ {
			err := sp.upload(key)
			if err == nil {
				if failing {
					sp.log.Info("spool: uploads work again", "pending", sp.Pending())
					failing = false
				}
				break
			}
			if sp.ctx.Err() != nil {
				return
			}
			sp.mu.Lock()
			sp.status.Failures++
			sp.status.State = "retrying"
			sp.status.LastError = err.Error()
			sp.status.Forbidden = errors.Is(err, ErrForbidden)
			sp.mu.Unlock()
			if errors.Is(err, ErrBadKey) {
				sp.log.Error("spool: object cannot be uploaded, left in the spool", "key", key, "err", err)
				break
			}
			if !failing {
				sp.log.Warn("spool: upload failed, retrying", "key", key, "err", err)
				failing = true
			}
			t := time.NewTimer(sp.set.Backoff.Delay(attempt, nil))
			select {
			case <-t.C:
			case <-sp.ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// upload sends one spooled file and deletes it once confirmed, unless it was
// replaced meanwhile (then the new version is queued and sent next).
func (sp *Spool) upload(key string) error {
	name := filepath.Join(sp.data, filepath.FromSlash(key))
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a duplicate queue entry of an object already sent
	}
	if err != nil {
		return err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return err
	}
	if err := sp.store.Put(sp.ctx, key, f, before.Size(), sp.set.Meta(key)); err != nil {
		return err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.status.Uploaded++
	sp.status.State = "live"
	sp.status.LastError = ""
	sp.status.Forbidden = false
	now, err := os.Stat(name)
	if err != nil || !os.SameFile(before, now) {
		return nil
	}
	if err := os.Remove(name); err != nil {
		return err
	}
	sp.pending--
	sp.notifyLocked()
	return nil
}
