package recorder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/storage"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// TestStartStopOnDemand records the middle of a stream that no rule
// records: Start after a third of the frames, Stop after two thirds. The
// recording must begin with the init segments kept from before Start and
// end up finalised, with the events in order.
func TestStartStopOnDemand(t *testing.T) {
	fx, err := transmuxtest.Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	root, spoolDir := t.TempDir(), t.TempDir()
	st, _ := storage.NewLocal(root)
	sp, err := storage.NewSpool(st, storage.SpoolSettings{Dir: spoolDir})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan Event, 8)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec, err := New(Settings{Spool: sp, Now: func() time.Time { return now }, OnEvent: func(e Event) { events <- e }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Start("live"); !errors.Is(err, ErrNotLive) {
		t.Fatalf("Start before publish: %v, want ErrNotLive", err)
	}
	s := media.NewStream("live", fx.Tracks(), nil)
	sink := rec.consume(s)
	tm, err := transmux.New(transmux.Settings{}, fx.Tracks(), sink)
	if err != nil {
		t.Fatal(err)
	}
	n := len(fx.Frames)
	for i, f := range fx.Frames {
		switch i {
		case n / 3:
			a, err := rec.Start("live")
			if err != nil || a.Key != "live/20261125T100000Z/" {
				t.Fatalf("Start: %+v %v", a, err)
			}
			if _, err := rec.Start("live"); !errors.Is(err, ErrRecording) {
				t.Fatalf("second Start: %v, want ErrRecording", err)
			}
			if got, ok := rec.Recording("live"); !ok || got.Key != a.Key {
				t.Fatalf("Recording: %+v %v", got, ok)
			}
		case 2 * n / 3:
			if _, err := rec.Stop("live"); err != nil {
				t.Fatal(err)
			}
			if _, err := rec.Stop("live"); !errors.Is(err, ErrNotRecording) {
				t.Fatalf("second Stop: %v, want ErrNotRecording", err)
			}
			if _, err := rec.Start("live"); !errors.Is(err, ErrTooSoon) {
				t.Fatalf("restart in the same second: %v, want ErrTooSoon", err)
			}
		}
		if err := tm.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	tm.End(nil)
	rec.Close()
	drain(t, sp)
	if e := <-events; e.Kind != EventStarted {
		t.Errorf("first event %+v, want started", e)
	}
	if e := <-events; e.Kind != EventFinished || e.Key != "live/20261125T100000Z/" {
		t.Errorf("second event %+v, want finished", e)
	}
	base := filepath.Join(root, "live", "20261125T100000Z")
	pl, err := os.ReadFile(filepath.Join(base, "video.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	segs := strings.Count(string(pl), "#EXTINF:")
	// 10 s of 2 s segments; the middle third holds one or two whole ones.
	if segs < 1 || segs > 3 {
		t.Errorf("%d segments in the on-demand recording, want 1-3:\n%s", segs, pl)
	}
	if _, err := os.Stat(filepath.Join(base, "recording.mp4")); err != nil {
		t.Error(err)
	}
}
