package origin

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/state"
	"github.com/whipcast/whipcast/storage"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// stuckSpool is a spool on a disk that stops answering: every write waits
// until release is closed.
type stuckSpool struct {
	*storage.Spool
	release chan struct{}
}

func (s *stuckSpool) Put(key string, b []byte) error {
	<-s.release
	return s.Spool.Put(key, b)
}

func (s *stuckSpool) PutFunc(key string, w func(io.Writer) error) error {
	<-s.release
	return s.Spool.PutFunc(key, w)
}

func (s *stuckSpool) Delete(key string) error {
	<-s.release
	return s.Spool.Delete(key)
}

// events collects an Origin's events.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) find(k EventKind) (Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.evs {
		if ev.Kind == k {
			return ev, true
		}
	}
	return Event{}, false
}

// feed writes frames to tm on its own goroutine and fails the test if
// that does not end within a generous bound: a sink that blocks the
// transmuxer shows here. after, when set, runs after each frame (the
// fixture is fed faster than real time: a test of storage that keeps up
// waits there for the writer).
func feed(t *testing.T, tm *transmux.Transmuxer, frames []*media.Frame, end bool, after func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for _, f := range frames {
			if err := tm.WriteFrame(f); err != nil {
				done <- err
				return
			}
			if after != nil {
				after()
			}
		}
		if end {
			tm.End(nil)
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the transmuxer is blocked by the origin's stuck storage")
	}
}

// stalled runs the fixture into an Origin whose spool is stuck from the
// start, with a queue of one segment per track. release unblocks the spool
// after frames[:at] (at < 0: after the end).
func stalled(t *testing.T, at int) (*checkStore, *events, *Origin) {
	t.Helper()
	fx, err := transmuxtest.Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := storage.NewLocal(t.TempDir())
	st := &checkStore{Local: loc, meta: map[string]storage.Meta{}}
	sp, err := storage.NewSpool(st, storage.SpoolSettings{Dir: t.TempDir(), Meta: Meta})
	if err != nil {
		t.Fatal(err)
	}
	stuck := &stuckSpool{Spool: sp, release: make(chan struct{})}
	evs := &events{}
	o, err := New(Settings{Spool: stuck, Prefix: "live", Window: 10, Queue: 1, OnEvent: evs.add,
		Publish: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	ss := o.consume(media.NewStream("cam/1", fx.Tracks(), nil)).(*session)
	tm, err := transmux.New(transmux.Settings{}, fx.Tracks(), ss)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := o.Publishing("cam/1"); !ok || a.State != state.Starting || a.Key != "live/cam/1/" {
		t.Fatalf("API state before the first segment: %+v %v", a, ok)
	}
	if at < 0 {
		feed(t, tm, fx.Frames, true, nil)
		if _, ok := evs.find(EventRetrying); !ok {
			t.Fatal("no EventRetrying while the spool is stuck")
		}
		close(stuck.release)
	} else {
		feed(t, tm, fx.Frames[:at], false, nil)
		ev, ok := evs.find(EventRetrying)
		if !ok || !strings.Contains(ev.Err.Error(), "storage too slow") {
			t.Fatalf("events while the spool is stuck: %+v", evs.evs)
		}
		if a, _ := o.Publishing("cam/1"); a.State != state.Retrying || !strings.Contains(a.Error, "storage too slow") || a.DroppedSegments == 0 {
			t.Errorf("API state while the spool is stuck: %+v", a)
		}
		close(stuck.release)
		written := func() {
			for deadline := time.Now().Add(30 * time.Second); len(ss.ch) > 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		written()
		feed(t, tm, fx.Frames[at:], false, written)
		if a, _ := o.Publishing("cam/1"); a.State != state.Live || a.Error != "" || a.DroppedSegments != ss.dropped {
			t.Errorf("API state once storage caught up: %+v (dropped %d)", a, ss.dropped)
		}
		tm.End(nil)
	}
	o.Close() // returns once the session's goroutine has ended
	if a, ok := o.Publishing("cam/1"); ok {
		t.Errorf("API state after the end: %+v", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sp.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, b := range st.bad {
		t.Error(b)
	}
	if o.Dropped() == 0 {
		t.Error("no segment counted as dropped")
	}
	return st, evs, o
}

// TestOriginStuckSpoolResumes: a spool that stops answering never blocks
// the transmuxer; the segments it cannot take are published as gaps (no
// playlist or MPD names a missing object), and once it drains the publish
// resumes with the next segment.
func TestOriginStuckSpoolResumes(t *testing.T) {
	fx, err := transmuxtest.Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	st, evs, _ := stalled(t, len(fx.Frames)/2)
	ev, ok := evs.find(EventResumed)
	if !ok || ev.Dropped == 0 {
		t.Fatalf("no EventResumed with dropped segments: %+v", evs.evs)
	}
	gaps := 0
	for _, name := range []string{"video.m3u8", "audio.m3u8"} {
		pl, _ := st.Get(context.Background(), "live/cam/1/"+name)
		gaps += bytes.Count(pl, []byte("#EXT-X-GAP\n"))
		if !bytes.HasSuffix(pl, []byte("#EXT-X-ENDLIST\n")) {
			t.Errorf("final %s has no end:\n%s", name, pl)
		}
		// After the gap, segments are written again: the last one listed
		// is not a gap.
		lines := strings.Split(strings.TrimSuffix(string(pl), "#EXT-X-ENDLIST\n"), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], "#EXTINF") {
				if i > 0 && lines[i-1] == "#EXT-X-GAP" {
					t.Errorf("the last segment of %s is a gap: the publish did not resume\n%s", name, pl)
				}
				break
			}
		}
	}
	if gaps != ev.Dropped {
		t.Errorf("%d EXT-X-GAP segments in the playlists, %d segments dropped", gaps, ev.Dropped)
	}
}

// TestOriginStuckSpoolEnd: the publish ends while the spool is stuck; the
// end does not wait for it, and once the spool answers the last playlists
// (with EXT-X-ENDLIST, gaps for what was dropped) are written and the
// session's goroutine ends.
func TestOriginStuckSpoolEnd(t *testing.T) {
	st, _, _ := stalled(t, -1)
	pl, _ := st.Get(context.Background(), "live/cam/1/video.m3u8")
	if !bytes.Contains(pl, []byte("#EXT-X-GAP\n")) || !bytes.HasSuffix(pl, []byte("#EXT-X-ENDLIST\n")) {
		t.Errorf("final media playlist, want gaps and the end:\n%s", pl)
	}
	mpd, _ := st.Get(context.Background(), "live/cam/1/manifest.mpd")
	if !bytes.Contains(mpd, []byte(`type="static"`)) {
		t.Errorf("final MPD:\n%s", mpd)
	}
}
