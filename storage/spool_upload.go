package storage

// The Spool's upload side: one goroutine takes the next file, uploads it and retries.

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"
)

// next returns the next operation, re-scanning the directory when the
// in-memory queue overflowed; false once closed.
func (sp *Spool) next() (op, bool) {
	for {
		sp.mu.Lock()
		if len(sp.queue) > 0 {
			o := sp.queue[0]
			sp.queue = sp.queue[1:]
			if !o.del {
				name := o.file
				if name == "" {
					delete(sp.queued, o.key)
					name = filepath.Join(sp.data, filepath.FromSlash(o.key))
				}
				// Opened under mu: a Put of a newer version after this
				// point is queued anew, never uploaded in this op's place
				// (retries included).
				o.fd, _ = os.Open(name)
			}
			sp.mu.Unlock()
			return o, true
		}
		rescan := sp.overflow
		sp.overflow = false
		sp.mu.Unlock()
		if rescan {
			keys, _, err := listByAge(sp.data)
			if err != nil {
				sp.log.Warn("spool: scan failed", "err", err)
			}
			sp.requeue(keys)
			continue
		}
		select {
		case <-sp.wake:
		case <-sp.ctx.Done():
			return op{}, false
		}
	}
}

// requeue rebuilds the queue from a scan, oldest first, followed by what was
// queued while the scan ran (spooled after it, so newer).
func (sp *Spool) requeue(keys []string) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	during := sp.queue
	sp.queue, sp.queued = nil, make(map[string]bool)
	for _, k := range keys {
		if !sp.queued[k] {
			sp.enqueueLocked(op{key: k})
		}
	}
	for _, o := range during {
		if o.file != "" {
			sp.queue = append(sp.queue, o)
		} else {
			if o.del {
				sp.deletes-- // counted again as it is queued again
			}
			// A put listed by the scan too moves here: the file may be
			// this newer version.
			sp.enqueueLocked(o)
		}
	}
}

func (sp *Spool) run() {
	defer close(sp.done)
	failing := false
	for {
		o, ok := sp.next()
		if !ok {
			return
		}
		key := o.key
		for attempt := 0; ; attempt++ {
			var err error
			if o.del {
				err = sp.store.Delete(sp.ctx, key)
				if err == nil || errors.Is(err, ErrBadKey) {
					sp.mu.Lock()
					sp.deleteDoneLocked()
					sp.mu.Unlock()
				}
			} else {
				err = sp.upload(o)
			}
			if err == nil {
				if failing {
					sp.log.Info("spool: uploads work again", "pending", sp.Pending())
					failing = false
				}
				break
			}
			if sp.ctx.Err() != nil {
				closeOp(o)
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
				closeOp(o)
				return
			}
		}
		closeOp(o)
	}
}

func closeOp(o op) {
	if o.fd != nil {
		_ = o.fd.Close()
	}
}

// upload sends one spooled file and deletes it once confirmed, unless it was
// replaced meanwhile (then the new version is queued and sent next); a
// pinned older version's file is always deleted.
func (sp *Spool) upload(o op) error {
	key, f := o.key, o.fd
	name := filepath.Join(sp.data, filepath.FromSlash(key))
	if f == nil {
		return nil // a duplicate queue entry of an object already sent
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
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
	if o.file != "" {
		if os.Remove(o.file) == nil {
			sp.pending--
			sp.notifyLocked()
		}
		return nil
	}
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
