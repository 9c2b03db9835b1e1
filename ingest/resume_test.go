package ingest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/media"
)

// TestResumeAfterDelete: with a reconnect window a DELETE leaves the stream
// held; a new publish of the name continues the same Stream with frames
// placed after the last one; CloseStream ends it at once despite the window.
func TestResumeAfterDelete(t *testing.T) {
	checkNoLeaks(t)
	reg := media.NewRegistryWith(media.RegistrySettings{ReconnectWindow: time.Hour})
	srv, err := NewServer(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, Logger: quietLogger()}, reg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(newMux(srv, nil))
	defer func() {
		hs.Close()
		_ = srv.Close()
		reg.Close()
	}()
	url := hs.URL + "/whip/live/re"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := func() {
		t.Helper()
		c, err := whipclient.Publish(ctx, url, "", "../testdata/av.h264", "../testdata/av.ogg",
			whipclient.Options{LoopbackOnly: true, MaxDuration: 1500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Wait(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the last packets
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}

	published := make(chan *media.Reader, 2)
	reg.OnPublish(func(st *media.Stream) { published <- st.Subscribe("test", 0) })
	send()
	var r *media.Reader
	select {
	case r = <-published:
	default:
		t.Fatal("not published")
	}
	defer r.Close()
	s := r.Stream()
	if st, _, reason := s.State(); st != media.StateInterrupted || reason != "unpublished" {
		t.Fatalf("after DELETE: %v %q, want interrupted (unpublished)", st, reason)
	}
	last := map[media.Kind]int64{}
	for r.Len() > 0 {
		f, _ := r.Read(ctx)
		last[f.Track.Kind] = f.DTS
	}

	send()
	if len(published) != 0 {
		t.Fatal("the resume was published as a new stream")
	}
	if s.Resumes() != 1 {
		t.Fatalf("resumes %d, want 1", s.Resumes())
	}
	first := map[media.Kind]*media.Frame{}
	for r.Len() > 0 {
		f, _ := r.Read(ctx)
		if first[f.Track.Kind] == nil {
			first[f.Track.Kind] = f
		}
	}
	for _, k := range []media.Kind{media.KindVideo, media.KindAudio} {
		f := first[k]
		if f == nil {
			t.Fatalf("no %v after the resume", k)
		}
		if !f.Discontinuity || f.DTS <= last[k] {
			t.Errorf("%v after the resume: DTS %d (last before %d), discontinuity %v", k, f.DTS, last[k], f.Discontinuity)
		}
	}

	// CloseStream (a room deleted) ends a live stream without a window.
	c, err := whipclient.Publish(ctx, url, "", "../testdata/av.h264", "../testdata/av.ogg",
		whipclient.Options{LoopbackOnly: true, MaxDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !srv.CloseStream("live/re") {
		t.Fatal("CloseStream found no publish")
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("CloseStream left the stream held")
	}
}
