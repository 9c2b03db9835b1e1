package packager

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// dashHarness is a DASH packager fed by transmuxers the test drives frame by
// frame, through DASH.publish as the Service would, on a fake clock.
type dashHarness struct {
	d   *DASH
	srv *httptest.Server
	fx  *transmuxtest.Fixture
	tm  *transmux.Transmuxer
	pos int

	mu  sync.Mutex
	now time.Time
}

func newDASHHarness(t testing.TB, set DASHSettings) *dashHarness {
	t.Helper()
	x := &dashHarness{fx: loadFixture(t), now: fixtureBase}
	x.d = NewDASH(set, nil)
	x.d.now = func() time.Time { x.mu.Lock(); defer x.mu.Unlock(); return x.now }
	x.d.epochs.Store(0) // epochs "1", "2"...: stable file names for the golden file
	x.srv = httptest.NewServer(http.StripPrefix("/dash/", x.d))
	x.publish(t)
	t.Cleanup(func() {
		x.d.Close()
		x.srv.Close()
	})
	return x
}

// publish starts a new publish of live/cam from the fixture's first frame.
func (x *dashHarness) publish(t testing.TB) {
	sink := x.d.publish(&media.Stream{Name: "live/cam", Tracks: x.fx.Tracks()})
	tm, err := transmux.New(x.d.set.tm, x.fx.Tracks(), sink)
	if err != nil {
		t.Fatal(err)
	}
	x.tm, x.pos = tm, 0
}

// until feeds frames up to (excluding) stream time sec, moving the clock
// with them.
func (x *dashHarness) until(sec float64) {
	for x.pos < len(x.fx.Frames) {
		f := x.fx.Frames[x.pos]
		if f.Seconds(f.DTS) >= sec {
			return
		}
		x.mu.Lock()
		x.now = fixtureBase.Add(seconds(f.Seconds(f.DTS)))
		x.mu.Unlock()
		_ = x.tm.WriteFrame(f)
		x.pos++
	}
}

func (x *dashHarness) get(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(x.srv.URL + "/dash/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func (x *dashHarness) mpd(t testing.TB) (string, mpdXML) {
	t.Helper()
	resp, body := x.get(t, "live/cam/manifest.mpd")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/dash+xml" {
		t.Fatalf("MPD: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var m mpdXML
	if err := xml.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("MPD does not parse back: %v\n%s", err, body)
	}
	return body, m
}

func TestDASHMPDGolden(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{Window: 3})
	x.until(8.5)
	body, m := x.mpd(t)
	golden(t, "manifest.mpd", strings.ReplaceAll(body, x.srv.URL, "http://HOST"))
	if m.Type != "dynamic" || len(m.Periods) != 1 || len(m.Periods[0].AdaptationSets) != 2 || m.ServiceDescription == nil {
		t.Fatalf("%+v", m)
	}
	// Every complete segment is listed with its own tfdt and duration, and
	// the one in production comes last.
	x.d.mu.Lock()
	st := x.d.streams["live/cam"]
	x.d.mu.Unlock()
	for i, as := range m.Periods[0].AdaptationSets {
		tr := st.periods[0].tracks[i]
		var ts []uint64
		var tt uint64
		for _, s := range as.SegmentTemplate.Timeline.S {
			if s.T != nil {
				tt = *s.T
			}
			for range s.R + 1 {
				ts = append(ts, tt)
				tt += s.D
			}
		}
		if len(ts) != len(tr.segs)+1 {
			t.Fatalf("%s: %d S, want %d segments + 1 in production", tr.name, len(ts), len(tr.segs))
		}
		for j, seg := range tr.segs {
			if ts[j] != seg.BaseMediaDecodeTime {
				t.Errorf("%s: S[%d]@t %d, tfdt %d", tr.name, j, ts[j], seg.BaseMediaDecodeTime)
			}
		}
		if ts[len(ts)-1] != tr.parts[0].BaseMediaDecodeTime {
			t.Errorf("%s: announced %d, in production %d", tr.name, ts[len(ts)-1], tr.parts[0].BaseMediaDecodeTime)
		}
	}
}

func TestDASHNotFound(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{Window: 3, BlockTimeout: 200 * time.Millisecond})
	x.until(10)
	_, m := x.mpd(t)
	media := m.Periods[0].AdaptationSets[0].SegmentTemplate.Media
	for _, p := range []string{
		"other/manifest.mpd",
		"live/cam/index.m3u8",
		"live/cam/" + strings.ReplaceAll(media, "$Time$", "0"), // left the window
		"live/cam/" + strings.ReplaceAll(media, "$Time$", "1"), // never a segment start
		"live/cam/" + strings.ReplaceAll(media, "$Time$", strconv.Itoa(1<<40)),
		"live/cam/video_zz_t0.m4s",
		"live/cam/video_e1_init7.mp4",
	} {
		if resp, _ := x.get(t, p); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// TestDASHChunked: the segment in production is sent part by part, each as
// the transmuxer makes it, and the response ends with the segment.
func TestDASHChunked(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{})
	x.until(4.1) // segments 0 and 1 complete, 2 just started
	_, m := x.mpd(t)
	as := m.Periods[0].AdaptationSets[0]
	s := as.SegmentTemplate.Timeline.S
	var tt uint64 // end of the last segment listed
	n := 0
	for _, e := range s {
		if e.T != nil {
			tt = *e.T
		}
		for range e.R + 1 {
			tt += e.D
			n++
		}
	}
	// Segment 2 has no chunk yet: it is not announced (it could still be
	// cut into a new Period), but its URL follows from the timeline.
	if n != 2 || tt != 4*90000 {
		t.Fatalf("listed %d segments up to %d, want 2 up to %d", n, tt, 4*90000)
	}
	last := struct{ T *uint64 }{&tt}
	url := x.srv.URL + "/dash/live/cam/" + strings.ReplaceAll(as.SegmentTemplate.Media, "$Time$", strconv.FormatUint(*last.T, 10))
	// Asked before its first chunk exists: the request waits for it.
	resps := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			t.Error(err)
		}
		resps <- resp
	}()
	time.Sleep(50 * time.Millisecond)
	x.until(4.5) // a few parts of segment 2
	var resp *http.Response
	select {
	case resp = <-resps:
	case <-time.After(5 * time.Second):
		t.Fatal("no response once the first chunks were there")
	}
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != -1 {
		t.Fatalf("in production: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	got := make(chan int, 1)
	go func() {
		b, _ := io.ReadAll(resp.Body)
		got <- len(b)
	}()
	select {
	case <-got:
		t.Fatal("response ended before the segment was complete")
	case <-time.After(100 * time.Millisecond):
	}
	x.until(7) // segment 2 completes
	select {
	case n := <-got:
		x.d.mu.Lock()
		tr := x.d.streams["live/cam"].periods[0].tracks[0]
		seg := tr.findSegment(*last.T)
		x.d.mu.Unlock()
		if seg == nil || int64(n) != seg.Size {
			t.Fatalf("streamed %d bytes, segment %+v", n, seg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("response did not end with the segment")
	}
}

// TestDASHEndAndRepublish: the end makes the MPD static; a new publish in
// the grace period continues it with a second Period after the first.
func TestDASHEndAndRepublish(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{})
	x.until(6.5)
	x.tm.End(nil)
	_, m := x.mpd(t)
	if m.Type != "static" || m.MediaPresentationDuration == "" || m.MinimumUpdatePeriod != "" {
		t.Fatalf("ended: %+v", m)
	}
	x.mu.Lock()
	x.now = x.now.Add(3 * time.Second)
	x.mu.Unlock()
	x.publish(t)
	x.until(4.5)
	_, m = x.mpd(t)
	if m.Type != "dynamic" || len(m.Periods) != 2 || m.Periods[0].ID == m.Periods[1].ID {
		t.Fatalf("republished: %+v", m.Periods)
	}
	s0, _ := time.ParseDuration(strings.ToLower(strings.TrimPrefix(m.Periods[0].Start, "PT")))
	s1, _ := time.ParseDuration(strings.ToLower(strings.TrimPrefix(m.Periods[1].Start, "PT")))
	if s1 < s0+6*time.Second {
		t.Errorf("second Period starts at %v, first at %v, which lasted 6 s", s1, s0)
	}
	if init := m.Periods[1].AdaptationSets[0].SegmentTemplate.Initialization; init == m.Periods[0].AdaptationSets[0].SegmentTemplate.Initialization {
		t.Errorf("both Periods use init %s", init)
	}
}

// BenchmarkDASHRenderMPD: rendering the live MPD of a full window, which
// happens once per change (every part), not per request.
func BenchmarkDASHRenderMPD(b *testing.B) {
	x := newDASHHarness(b, DASHSettings{})
	x.until(20.5)
	st := x.d.stream("live/cam")
	b.ReportAllocs()
	for b.Loop() {
		st.mu.Lock()
		_ = st.renderMPD()
		st.mu.Unlock()
	}
}
