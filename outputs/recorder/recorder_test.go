package recorder

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/storage"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// record runs the fixture through a transmuxer into a recorder on a local
// store and returns the store's root.
func record(t *testing.T, abandonAfter int) (root, spoolDir string, rec *Recorder, sp *storage.Spool) {
	t.Helper()
	fx, err := transmuxtest.Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	root, spoolDir = t.TempDir(), t.TempDir()
	st, _ := storage.NewLocal(root)
	sp, err = storage.NewSpool(st, storage.SpoolSettings{Dir: spoolDir})
	if err != nil {
		t.Fatal(err)
	}
	rec, err = New(Settings{Spool: sp, Prefix: "p", Record: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	s := media.NewStream("a/b", fx.Tracks(), nil)
	s.Started = time.Date(2026, 11, 24, 23, 59, 59, 0, time.UTC)
	sink := rec.consume(s)
	tm, err := transmux.New(transmux.Settings{}, fx.Tracks(), sink)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fx.Frames {
		if i == abandonAfter {
			// Let the writer catch up, as it would in real time.
			for len(sink.(*tap).sess.ch) > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			rec.Abandon()
		}
		if err := tm.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	tm.End(nil)
	rec.Close()
	return root, spoolDir, rec, sp
}

func drain(t *testing.T, sp *storage.Spool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sp.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	sp.Close()
}

func TestRecordLocal(t *testing.T) {
	root, _, _, sp := record(t, -1)
	drain(t, sp)
	base := filepath.Join(root, "p", "a", "b", "20261124T235959Z")
	for _, f := range []string{"index.m3u8", "video.m3u8", "audio.m3u8", "manifest.mpd", "recording.mp4", "video_init_0.mp4", "video_000000.m4s"} {
		if _, err := os.Stat(filepath.Join(base, f)); err != nil {
			t.Error(err)
		}
	}
	pl, _ := os.ReadFile(filepath.Join(base, "video.m3u8"))
	if !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.HasSuffix(string(pl), "#EXT-X-ENDLIST\n") {
		t.Errorf("video.m3u8:\n%s", pl)
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		return
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", filepath.Join(base, "recording.mp4")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "h264,300" {
		t.Errorf("ffprobe recording.mp4: %v %s", err, out)
	}
}

func TestRecoverAbandoned(t *testing.T) {
	root, spoolDir, _, sp := record(t, 500)
	drain(t, sp)
	base := filepath.Join(root, "p", "a", "b", "20261124T235959Z")
	if _, err := os.Stat(filepath.Join(base, "recording.mp4")); err == nil {
		t.Fatal("an abandoned session was finalised")
	}
	st, _ := storage.NewLocal(root)
	sp2, _ := storage.NewSpool(st, storage.SpoolSettings{Dir: spoolDir})
	rec2, _ := New(Settings{Spool: sp2})
	rec2.Recover()
	rec2.Close()
	drain(t, sp2)
	for _, f := range []string{"index.m3u8", "recording.mp4"} {
		if _, err := os.Stat(filepath.Join(base, f)); err != nil {
			t.Error(err)
		}
	}
	if d, _ := os.ReadDir(filepath.Join(spoolDir, "sessions")); len(d) != 0 {
		t.Errorf("sessions left open: %v", d)
	}
}
