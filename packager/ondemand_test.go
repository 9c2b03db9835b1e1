package packager

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// onDemand is HLS and DASH over a Service that packages only on request.
type onDemand struct {
	reg  *media.Registry
	sv   *transmux.Service
	hls  *HLS
	dash *DASH
	srv  *httptest.Server
}

func newOnDemand(t *testing.T, idle time.Duration) *onDemand {
	t.Helper()
	o := &onDemand{reg: media.NewRegistry()}
	o.sv = transmux.NewService(transmux.Settings{ReaderQueue: 4096, Idle: idle}, nil)
	o.hls = NewHLS(HLSSettings{}, nil)
	o.hls.Attach(o.sv)
	o.dash = NewDASH(DASHSettings{}, nil)
	o.dash.Attach(o.sv)
	o.sv.Attach(o.reg)
	mux := http.NewServeMux()
	mux.Handle("/hls/", http.StripPrefix("/hls/", o.hls))
	mux.Handle("/dash/", http.StripPrefix("/dash/", o.dash))
	o.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		o.srv.Close()
		o.reg.Close()
		o.sv.Close()
		o.hls.Close()
		o.dash.Close()
	})
	return o
}

func (o *onDemand) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(o.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// writeFrom writes every frame of fx with its DTS and PTS moved on by off
// seconds, so a fixture can be played again after itself.
func writeFrom(s *media.Stream, fx *transmuxtest.Fixture, off int64) {
	for _, f := range fx.Frames {
		g := *f
		d := off * int64(f.Track.ClockRate)
		g.DTS += d
		g.PTS += d
		s.Write(&g)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var segURI = regexp.MustCompile(`(?m)^(video_[^\s"]+\.m4s)$`)

// The first HLS request of a stream that nobody watched starts its
// packaging and is answered once the first segment is there; a player that
// stops asking lets it stop after the idle time (state dropped); the next
// request starts it again, under a new epoch. A name that is not published
// is a 404 at once.
func TestHLSOnDemand(t *testing.T) {
	const idle = 300 * time.Millisecond
	o := newOnDemand(t, idle)
	fx := loadFixture(t)
	s, err := o.reg.Publish("live/cam", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.hls.stream("live/cam") != nil || o.sv.Running() != 0 {
		t.Fatal("packaged before any request")
	}
	if code, _ := o.get(t, "/hls/nobody/index.m3u8"); code != http.StatusNotFound {
		t.Fatalf("unknown stream: %d, want 404", code)
	}

	type answer struct {
		code int
		body string
	}
	first := make(chan answer, 1)
	go func() {
		resp, err := http.Get(o.srv.URL + "/hls/live/cam/video.m3u8")
		if err != nil {
			first <- answer{code: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		first <- answer{resp.StatusCode, string(b)}
	}()
	// The request started the packaging; the publisher's frames come now.
	waitFor(t, "the first request starts the packaging", func() bool { return o.sv.Running() == 1 })
	writeFrom(s, fx, 0)
	a := <-first
	if a.code != http.StatusOK {
		t.Fatalf("first playlist: %d %s", a.code, a.body)
	}
	seg := segURI.FindStringSubmatch(a.body)
	if seg == nil {
		t.Fatalf("first playlist lists no segment:\n%s", a.body)
	}
	if code, body := o.get(t, "/hls/live/cam/"+seg[1]); code != http.StatusOK || len(body) == 0 {
		t.Fatalf("segment %s: %d, %d bytes", seg[1], code, len(body))
	}
	if code, _ := o.get(t, "/hls/live/cam/index.m3u8"); code != http.StatusOK {
		t.Fatalf("multivariant playlist: %d", code)
	}
	epoch := o.hls.stream("live/cam").epoch

	// The player leaves: no request for the idle time.
	waitFor(t, "the idle stop", func() bool { return o.sv.Running() == 0 && o.hls.stream("live/cam") == nil })
	if code, _ := o.get(t, "/hls/live/cam/"+seg[1]); code == http.StatusOK {
		t.Fatal("a segment of the stopped packaging is still served")
	}
	// That request was a player's too: packaging runs again, and writing
	// the next 10 s gives its new playlist a segment.
	waitFor(t, "a request starts it again", func() bool { return o.sv.Running() == 1 })
	writeFrom(s, fx, 10)
	code, body := o.get(t, "/hls/live/cam/video.m3u8")
	if code != http.StatusOK {
		t.Fatalf("playlist after the restart: %d", code)
	}
	st := o.hls.stream("live/cam")
	if st == nil {
		t.Fatal("no HLS state after the restart")
	}
	if st.epoch == epoch || !segURI.MatchString(body) {
		t.Fatalf("restart: epoch %q (was %q), playlist:\n%s", st.epoch, epoch, body)
	}
	o.reg.Unpublish(s)
}

// DASH requests are demand too: the first MPD request starts the
// packaging and gets an MPD with a segment; the idle stop drops the state.
func TestDASHOnDemand(t *testing.T) {
	const idle = 300 * time.Millisecond
	o := newOnDemand(t, idle)
	fx := loadFixture(t)
	s, err := o.reg.Publish("cam", fx.Tracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := o.get(t, "/dash/nobody/manifest.mpd"); code != http.StatusNotFound {
		t.Fatalf("unknown stream: %d, want 404", code)
	}
	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(o.srv.URL + "/dash/cam/manifest.mpd")
		if err != nil {
			first <- -1
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	waitFor(t, "the first MPD request starts the packaging", func() bool { return o.sv.Running() == 1 })
	writeFrom(s, fx, 0)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first MPD: %d", code)
	}
	if o.dash.stream("cam") == nil || o.hls.stream("cam") == nil {
		t.Fatal("no DASH or HLS state while packaged")
	}
	waitFor(t, "the idle stop", func() bool {
		return o.sv.Running() == 0 && o.dash.stream("cam") == nil && o.hls.stream("cam") == nil
	})
	o.reg.Unpublish(s)
}
