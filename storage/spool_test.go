package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// orderStore is a slow Local that checks, at every upload of "pl.m3u8"
// (a playlist whose lines are keys), that the store already holds each key
// it names, and at every delete that the stored playlist no longer names it.
type orderStore struct {
	*Local
	t    *testing.T
	slow time.Duration
	mu   sync.Mutex
	down bool // the store is unreachable
	bad  []string
	dels int
	log  []string
}

func (o *orderStore) Put(ctx context.Context, key string, r io.Reader, size int64, m Meta) error {
	time.Sleep(o.slow)
	o.mu.Lock()
	down := o.down
	o.mu.Unlock()
	if down {
		return errors.New("connection refused")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.log = append(o.log, key+"="+strings.ReplaceAll(string(b), "\n", ","))
	o.mu.Unlock()
	if key == "pl.m3u8" {
		for _, k := range strings.Fields(string(b)) {
			if _, err := o.Local.Get(ctx, k); err != nil {
				o.fail("playlist uploaded before " + k)
			}
		}
	}
	return o.Local.Put(ctx, key, bytes.NewReader(b), size, m)
}

func (o *orderStore) Delete(ctx context.Context, key string) error {
	if pl, err := o.Local.Get(ctx, "pl.m3u8"); err == nil && strings.Contains(string(pl), key) {
		o.fail("deleted " + key + " while the stored playlist names it")
	}
	o.mu.Lock()
	o.dels++
	o.mu.Unlock()
	return o.Local.Delete(ctx, key)
}

func (o *orderStore) setDown(down bool) {
	o.mu.Lock()
	o.down = down
	o.mu.Unlock()
}

func (o *orderStore) fail(s string) {
	o.mu.Lock()
	o.bad = append(o.bad, s)
	o.mu.Unlock()
}

// publishLive spools what a live origin spools: each segment, then the
// playlist naming the last window of them, then a delete of the segment
// that left the window.
func publishLive(t *testing.T, sp *Spool, from, to, window int, pace time.Duration) {
	t.Helper()
	for i := from; i < to; i++ {
		time.Sleep(pace)
		if err := sp.Put(fmt.Sprintf("seg%04d.m4s", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		var pl []string
		for j := max(0, i-window+1); j <= i; j++ {
			pl = append(pl, fmt.Sprintf("seg%04d.m4s", j))
		}
		if err := sp.Put("pl.m3u8", []byte(strings.Join(pl, "\n"))); err != nil {
			t.Fatal(err)
		}
		if old := i - window; old >= 0 {
			if err := sp.Delete(fmt.Sprintf("seg%04d.m4s", old)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSpoolOrder: a slow store, a queue that overflows, a store that is
// down for a while and a restart never let the playlist reach the store
// before a segment it names, nor a delete before the playlist that dropped
// the segment.
func TestSpoolOrder(t *testing.T) {
	dir := t.TempDir()
	loc, _ := NewLocal(t.TempDir())
	st := &orderStore{Local: loc, t: t, slow: time.Millisecond}
	set := SpoolSettings{Dir: dir, Queue: 8, Backoff: Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}}
	sp, err := NewSpool(st, set)
	if err != nil {
		t.Fatal(err)
	}
	publishLive(t, sp, 0, 20, 3, 0)                   // faster than the store: re-puts of the playlist coalesce
	publishLive(t, sp, 20, 40, 3, 3*time.Millisecond) // at a pace the store keeps up with
	st.setDown(true)                                  // outage: everything piles up, the queue overflows
	publishLive(t, sp, 40, 80, 3, 0)
	sp.Close() // restart with objects left on disk
	st.setDown(false)
	sp, err = NewSpool(st, set)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	publishLive(t, sp, 80, 120, 3, 3*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sp.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	pl, _ := loc.Get(ctx, "pl.m3u8")
	if want := "seg0117.m4s\nseg0118.m4s\nseg0119.m4s"; string(pl) != want {
		t.Errorf("stored playlist %q, want %q", pl, want)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, b := range st.bad {
		t.Error(b)
	}
	if len(st.bad) > 0 {
		t.Log(strings.Join(st.log, " "))
	}
	if st.dels == 0 {
		t.Error("no delete reached the store")
	}
}
