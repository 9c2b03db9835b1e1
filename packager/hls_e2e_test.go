package packager

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// TestE2EClient publishes the fixture on a real Registry at twice real time
// and plays it with gohlslib's LL-HLS client over HTTP.
func TestE2EClient(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	goroutines := runtime.NumGoroutine()
	fx := loadFixture(t)
	reg := media.NewRegistry()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sv := transmux.NewService(transmux.Settings{}, log)
	h := NewHLS(HLSSettings{}, log)
	h.Attach(sv)
	sv.Attach(reg)
	srv := httptest.NewServer(http.StripPrefix("/hls/", h))

	s, err := reg.Publish("live/cam", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	go func() {
		defer pubWG.Done()
		defer reg.Unpublish(s)
		start := time.Now()
		for _, f := range fx.Frames {
			due := start.Add(time.Duration(f.Seconds(f.DTS) * float64(time.Second) / 2))
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
				return
			}
			s.Write(f)
		}
	}()

	type vframe struct {
		pts int64
		key bool
	}
	var (
		mu     sync.Mutex
		video  []vframe
		audio  []int64
		gotAll = make(chan struct{})
		once   sync.Once
	)
	c := &gohlslib.Client{URI: srv.URL + "/hls/live/cam/index.m3u8"}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				c.OnDataH26x(tr, func(pts, _ int64, au [][]byte) {
					key := false
					for _, nalu := range au {
						if len(nalu) > 0 && nalu[0]&0x1f == 5 {
							key = true
						}
					}
					mu.Lock()
					video = append(video, vframe{pts, key})
					if len(video) >= 60 && len(audio) >= 50 {
						once.Do(func() { close(gotAll) })
					}
					mu.Unlock()
				})
			case *codecs.Opus:
				c.OnDataOpus(tr, func(pts int64, packets [][]byte) {
					mu.Lock()
					for range packets {
						audio = append(audio, pts)
					}
					mu.Unlock()
				})
			default:
				t.Errorf("unexpected track %T", tr.Codec)
			}
		}
		return nil
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitCh := c.Wait() // one waiter goroutine, drained below
	select {
	case <-gotAll:
	case err := <-waitCh:
		t.Fatalf("client stopped: %v", err)
	case <-ctx.Done():
		t.Fatal("timeout waiting for frames")
	}
	c.Close()
	<-waitCh

	mu.Lock()
	if !video[0].key {
		t.Error("first video frame is not a keyframe")
	}
	for i := 1; i < len(video); i++ {
		if video[i].pts <= video[i-1].pts {
			t.Fatalf("video pts not monotonic at %d: %d then %d", i, video[i-1].pts, video[i].pts)
		}
	}
	for i := 1; i < len(audio); i++ {
		if audio[i] < audio[i-1] {
			t.Fatalf("audio pts going back at %d", i)
		}
	}
	mu.Unlock()

	cancel()
	pubWG.Wait()
	sv.Close()
	h.Close()
	srv.Close()
	reg.Close()
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
