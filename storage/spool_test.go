package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// flakyStore is a Local that fails every Put while down is set.
type flakyStore struct {
	*Local
	mu    sync.Mutex
	err   error
	puts  int
	fails int
}

func (f *flakyStore) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *flakyStore) Put(ctx context.Context, key string, r io.Reader, size int64, m Meta) error {
	f.mu.Lock()
	err := f.err
	if err != nil {
		f.fails++
	} else {
		f.puts++
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Local.Put(ctx, key, r, size, m)
}

func spoolFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(filepath.Join(dir, "data"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestSpoolOutageAndRestart(t *testing.T) {
	dir := t.TempDir()
	loc, _ := NewLocal(t.TempDir())
	store := &flakyStore{Local: loc}
	store.setErr(fmt.Errorf("s3 put: %w", ErrForbidden))
	set := SpoolSettings{Dir: dir, Queue: 4, Backoff: Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}}
	sp, err := NewSpool(store, set)
	if err != nil {
		t.Fatal(err)
	}
	// More objects than the queue holds: the overflow is found by re-scan.
	for i := range 10 {
		if err := sp.Put(fmt.Sprintf("rec/s/%03d.m4s", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for sp.Status().Failures < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := sp.Status()
	if st.State != "retrying" || !st.Forbidden || st.Pending != 10 || st.LastError == "" {
		t.Fatalf("status while failing: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := sp.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain while failing: %v", err)
	}
	cancel()
	// A "restart": the new spool finds the files and uploads them.
	sp.Close()
	if n := spoolFiles(t, dir); n != 10 {
		t.Fatalf("%d files left in the spool after close, want 10", n)
	}
	store.setErr(nil)
	sp, err = NewSpool(store, set)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sp.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := loc.List(context.Background(), "rec/")
	if len(keys) != 10 {
		t.Fatalf("store holds %v", keys)
	}
	if n := spoolFiles(t, dir); n != 0 {
		t.Fatalf("%d files left in the spool", n)
	}
	if st := sp.Status(); st.State != "live" || st.Forbidden || st.Uploaded != 10 {
		t.Fatalf("status after catch-up: %+v", st)
	}
}

func TestSpoolRewriteKeepsLatest(t *testing.T) {
	loc, _ := NewLocal(t.TempDir())
	sp, err := NewSpool(loc, SpoolSettings{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for i := range 50 {
		if err := sp.Put("p/index.m3u8", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sp.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := loc.Get(ctx, "p/index.m3u8")
	if string(b) != "49" {
		t.Fatalf("store holds %q, want the last version", b)
	}
}

func TestSpoolRemovesTemps(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "data", "a"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "data", "a", ".tmp-123"), []byte("half"), 0o644)
	loc, _ := NewLocal(t.TempDir())
	sp, err := NewSpool(loc, SpoolSettings{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if sp.Pending() != 0 || spoolFiles(t, dir) != 0 {
		t.Fatalf("temp file counted or kept: pending %d", sp.Pending())
	}
}
