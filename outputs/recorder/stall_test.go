package recorder

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
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

// eventLog collects a Recorder's events.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (e *eventLog) add(ev Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *eventLog) find(k EventKind) (Event, bool) {
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
// transmuxer shows here. after, when set, runs after each frame.
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
		t.Fatal("the transmuxer is blocked by the recorder's stuck storage")
	}
}

// stuckRecording records the fixture through a spool that is stuck from
// the start, with a queue of one segment per track, and releases it after
// frames[:at] (at < 0: after the end). It returns the recording's
// directory in the store.
func stuckRecording(t *testing.T, at int) (string, *eventLog, *Recorder) {
	t.Helper()
	fx, err := transmuxtest.Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	st, _ := storage.NewLocal(root)
	sp, err := storage.NewSpool(st, storage.SpoolSettings{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stuck := &stuckSpool{Spool: sp, release: make(chan struct{})}
	evs := &eventLog{}
	rec, err := New(Settings{Spool: stuck, Queue: 1, Record: func(string) bool { return true }, OnEvent: evs.add})
	if err != nil {
		t.Fatal(err)
	}
	s := media.NewStream("a/b", fx.Tracks(), nil)
	s.Started = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tp := rec.consume(s).(*tap)
	tm, err := transmux.New(transmux.Settings{}, fx.Tracks(), tp)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		feed(t, tm, fx.Frames, true, nil)
		if _, ok := evs.find(EventRetrying); !ok {
			t.Fatal("no EventRetrying while the spool is stuck")
		}
		close(stuck.release)
	} else {
		feed(t, tm, fx.Frames[:at], false, nil)
		a, ok := rec.Recording("a/b")
		if !ok || a.State.String() != "retrying" || !strings.Contains(a.Error, "storage too slow") || a.DroppedSegments == 0 {
			t.Fatalf("recording while the spool is stuck: %+v %v", a, ok)
		}
		if ev, ok := evs.find(EventRetrying); !ok || ev.Err == nil {
			t.Fatalf("events while the spool is stuck: %+v", evs.evs)
		}
		close(stuck.release)
		// The fixture is fed faster than real time: storage that keeps up
		// is a writer that has written its queue before the next frame.
		tp.mu.Lock()
		ss := tp.sess
		tp.mu.Unlock()
		written := func() {
			for deadline := time.Now().Add(30 * time.Second); len(ss.ch) > 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		written()
		feed(t, tm, fx.Frames[at:len(fx.Frames)-1], false, written)
		if a, ok := rec.Recording("a/b"); !ok || a.State.String() != "live" || a.Error != "" || a.DroppedSegments == 0 {
			t.Fatalf("recording after the spool came back: %+v %v", a, ok)
		}
		feed(t, tm, fx.Frames[len(fx.Frames)-1:], true, nil)
	}
	rec.Close() // returns once the session's goroutine has ended
	drain(t, sp)
	if _, ok := evs.find(EventFinished); !ok {
		t.Errorf("the recording was not finalised: %+v", evs.evs)
	}
	if rec.Dropped() == 0 {
		t.Error("no segment counted as dropped")
	}
	return filepath.Join(root, "a", "b", "20261203T120000Z"), evs, rec
}

// TestRecordStuckSpoolResumes: a spool that stops answering never blocks
// the transmuxer; the recording falls behind (retrying, with the reason),
// drops segments, and resumes at a segment boundary once the spool drained.
// The gap is visible: a discontinuity in the playlists and a new Period in
// the MPD; the MP4 plays across it.
func TestRecordStuckSpoolResumes(t *testing.T) {
	fx, err := transmuxtest.Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	dir, evs, _ := stuckRecording(t, len(fx.Frames)/2)
	if ev, ok := evs.find(EventResumed); !ok || ev.Dropped == 0 {
		t.Fatalf("no EventResumed with dropped segments: %+v", evs.evs)
	}
	disc := 0
	for _, f := range []string{"video.m3u8", "audio.m3u8"} {
		pl, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		disc += strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n")
		if !strings.HasSuffix(string(pl), "#EXT-X-ENDLIST\n") {
			t.Errorf("%s:\n%s", f, pl)
		}
	}
	if disc == 0 {
		t.Error("no EXT-X-DISCONTINUITY marks the gap in the playlists")
	}
	mpd, err := os.ReadFile(filepath.Join(dir, "manifest.mpd"))
	if err != nil || strings.Count(string(mpd), "<Period") < 2 {
		t.Errorf("MPD, want a Period after the gap: %v\n%s", err, mpd)
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, "recording.mp4"), "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decode of recording.mp4: %v\n%s", err, out)
	}
}

// TestRecordStuckSpoolEnd: the publish ends while the spool is stuck; the
// end does not wait for it, and once the spool answers the recording is
// written, finalised, and its goroutine ends (Close returns).
func TestRecordStuckSpoolEnd(t *testing.T) {
	dir, _, _ := stuckRecording(t, -1)
	for _, f := range []string{"index.m3u8", "manifest.mpd", "recording.mp4"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}
