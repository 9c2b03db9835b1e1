package packager

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

var fixtureBase = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func loadFixture(t testing.TB) *transmuxtest.Fixture {
	t.Helper()
	fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/av.ogg", fixtureBase)
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// harness is an HLS packager with one stream fed directly by a transmuxer
// (no Registry), so tests control exactly which frames have arrived.
type harness struct {
	h   *HLS
	st  *hlsStream
	tm  *transmux.Transmuxer
	srv *httptest.Server
	fx  *transmuxtest.Fixture
	pos int
}

func newHarness(t *testing.T, set HLSSettings) *harness {
	t.Helper()
	fx := loadFixture(t)
	h := NewHLS(set, nil)
	st := newHLSStream(h, "live/cam", "e1")
	h.streams[st.name] = st
	tm, err := transmux.New(h.set.tm, fx.Tracks(), st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/hls/", h))
	t.Cleanup(func() {
		h.Close() // releases blocked requests first
		srv.Close()
	})
	return &harness{h: h, st: st, tm: tm, srv: srv, fx: fx}
}

// until feeds frames up to (excluding) stream time sec.
func (x *harness) until(sec float64) {
	for x.pos < len(x.fx.Frames) {
		f := x.fx.Frames[x.pos]
		if f.Seconds(f.DTS) >= sec {
			return
		}
		_ = x.tm.WriteFrame(f)
		x.pos++
	}
}

func (x *harness) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(x.srv.URL + "/hls/" + path)
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

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestPlaylistGolden(t *testing.T) {
	x := newHarness(t, HLSSettings{Window: 3})
	x.until(8.5) // 4 complete segments (window keeps 3) and 0.5 s in progress
	for _, tc := range []struct{ path, golden string }{
		{"live/cam/index.m3u8", "index.m3u8"},
		{"live/cam/video.m3u8", "video.m3u8"},
		{"live/cam/audio.m3u8", "audio.m3u8"},
	} {
		resp, body := x.get(t, tc.path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", tc.path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.apple.mpegurl" {
			t.Errorf("%s: content type %q", tc.path, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: cache control %q", tc.path, cc)
		}
		golden(t, tc.golden, body)
		pl, err := playlist.Unmarshal([]byte(body))
		if err != nil {
			t.Fatalf("%s: gohlslib cannot parse it: %v", tc.path, err)
		}
		switch pl := pl.(type) {
		case *playlist.Multivariant:
			if len(pl.Variants) != 1 || pl.Variants[0].Codecs[0] != "avc1.42c01f" && !strings.HasPrefix(pl.Variants[0].Codecs[0], "avc1.") ||
				pl.Variants[0].Codecs[1] != "opus" || len(pl.Renditions) != 1 {
				t.Errorf("multivariant: %+v", pl)
			}
		case *playlist.Media:
			if pl.MediaSequence != 1 || len(pl.Segments) != 3 || pl.PreloadHint == nil || len(pl.Parts) == 0 ||
				pl.ServerControl == nil || !pl.ServerControl.CanBlockReload || *pl.ServerControl.PartHoldBack < 3*200*time.Millisecond {
				t.Errorf("%s: %+v", tc.path, pl)
			}
		}
	}
}

func TestEndlistAndRemoval(t *testing.T) {
	x := newHarness(t, HLSSettings{EndGrace: 50 * time.Millisecond})
	x.until(100)
	x.tm.End(nil)
	_, body := x.get(t, "live/cam/video.m3u8")
	if !strings.HasSuffix(body, "#EXT-X-ENDLIST\n") || strings.Contains(body, "PRELOAD-HINT") {
		t.Fatalf("ended playlist:\n%s", body)
	}
	pl, err := playlist.Unmarshal([]byte(body))
	if err != nil || !pl.(*playlist.Media).Endlist || len(pl.(*playlist.Media).Segments) != 5 {
		t.Fatalf("parse: %v", err)
	}
	// Blocking requests return at once once the stream has ended.
	resp, _ := x.get(t, "live/cam/video.m3u8?_HLS_msn=9")
	if resp.StatusCode != 200 {
		t.Fatalf("blocking after end: %d", resp.StatusCode)
	}
	x.h.scheduleRemoval(x.st, x.h.set.EndGrace)
	deadline := time.Now().Add(15 * time.Second)
	for x.h.stream("live/cam") != nil {
		if time.Now().After(deadline) {
			t.Fatal("not removed after grace")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp, _ := x.get(t, "live/cam/video.m3u8"); resp.StatusCode != 404 {
		t.Fatalf("after removal: %d", resp.StatusCode)
	}
}

func TestBlockingReload(t *testing.T) {
	x := newHarness(t, HLSSettings{})
	x.until(4.5) // segments 0, 1 complete; 2 in progress
	type result struct {
		status int
		body   string
		at     time.Time
	}
	ask := func(path string) chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := http.Get(x.srv.URL + "/hls/" + path)
			if err != nil {
				ch <- result{status: -1}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- result{resp.StatusCode, string(b), time.Now()}
		}()
		return ch
	}
	seg := ask("live/cam/video.m3u8?_HLS_msn=2")
	part := ask("live/cam/video.m3u8?_HLS_msn=2&_HLS_part=4")
	hint := ask("live/cam/video_e1_part2_4.m4s")
	time.Sleep(100 * time.Millisecond)
	select {
	case r := <-seg:
		t.Fatalf("answered before segment 2 exists: %d", r.status)
	case r := <-part:
		t.Fatalf("answered before part 2.4 exists: %d", r.status)
	case r := <-hint:
		t.Fatalf("part served before it exists: %d", r.status)
	default:
	}
	x.until(5.0) // part 2.4 (4.8–5.0 s) completes when the 5.0 s frame arrives
	x.until(5.04)
	r := <-part
	if r.status != 200 || !strings.Contains(r.body, "video_e1_part2_4.m4s") {
		t.Fatalf("part reload: %d\n%s", r.status, r.body)
	}
	if r := <-hint; r.status != 200 || len(r.body) == 0 {
		t.Fatalf("hinted part: %d", r.status)
	}
	select {
	case <-seg:
		t.Fatal("segment reload answered before segment 2 is complete")
	default:
	}
	x.until(6.04)
	if r := <-seg; r.status != 200 || !strings.Contains(r.body, "video_e1_seg2.m4s") {
		t.Fatalf("segment reload: %d\n%s", r.status, r.body)
	}
	// More than two segments ahead: 400 at once.
	if resp, _ := x.get(t, "live/cam/video.m3u8?_HLS_msn=9"); resp.StatusCode != 400 {
		t.Fatalf("far ahead: %d", resp.StatusCode)
	}
	if resp, _ := x.get(t, "live/cam/video.m3u8?_HLS_part=1"); resp.StatusCode != 400 {
		t.Fatalf("part without msn: %d", resp.StatusCode)
	}
}

func TestBlockingTimeout(t *testing.T) {
	x := newHarness(t, HLSSettings{BlockTimeout: 50 * time.Millisecond})
	x.until(2.5)
	if resp, _ := x.get(t, "live/cam/video.m3u8?_HLS_msn=2"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("timeout: %d", resp.StatusCode)
	}
	// A hinted part that never comes: 404 after the timeout.
	if resp, _ := x.get(t, "live/cam/video_e1_part1_3.m4s"); resp.StatusCode != 404 {
		t.Fatalf("hint timeout: %d", resp.StatusCode)
	}
}

func TestFiles(t *testing.T) {
	x := newHarness(t, HLSSettings{Window: 2})
	x.until(9)
	for _, tc := range []struct {
		path   string
		status int
		ct     string
	}{
		{"live/cam/video_e1_init0.mp4", 200, "video/mp4"},
		{"live/cam/audio_e1_init0.mp4", 200, "audio/mp4"},
		{"live/cam/video_e1_seg3.m4s", 200, "video/mp4"},
		{"live/cam/audio_e1_seg2.m4s", 200, "audio/mp4"},
		{"live/cam/video_e1_part3_0.m4s", 200, "video/mp4"},
		{"live/cam/video_e1_part4_1.m4s", 200, "video/mp4"},
		{"live/cam/video_e1_seg1.m4s", 404, ""},     // left the window
		{"live/cam/video_e1_seg4.m4s", 404, ""},     // in progress
		{"live/cam/video_e1_part9_0.m4s", 404, ""},  // far future: no wait
		{"live/cam/video_e1_init1.mp4", 404, ""},    // no such init
		{"live/cam/video_e2_seg3.m4s", 404, ""},     // other publish
		{"live/cam/video_e1_seg03.m4s", 404, ""},    // non-canonical
		{"live/cam/text.m3u8", 404, ""},             // no such track
		{"live/other/index.m3u8", 404, ""},          // no such stream
		{"live/cam/../cam/index.m3u8", 404, ""},     // bad name
		{"index.m3u8", 404, ""},                     // no stream
		{"live/cam/video_e1_seg3.ts", 404, ""},      // unknown file
		{"live/cam/video.m3u8?_HLS_msn=x", 400, ""}, // bad query
	} {
		resp, body := x.get(t, tc.path)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.status)
			continue
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS header", tc.path)
		}
		if tc.status == 200 {
			if ct := resp.Header.Get("Content-Type"); ct != tc.ct {
				t.Errorf("%s: content type %q", tc.path, ct)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
				t.Errorf("%s: cache control %q", tc.path, cc)
			}
			if len(body) == 0 || resp.ContentLength != int64(len(body)) {
				t.Errorf("%s: %d bytes, Content-Length %d", tc.path, len(body), resp.ContentLength)
			}
		}
	}
	// Segment = its parts, byte for byte.
	_, seg := x.get(t, "live/cam/video_e1_seg3.m4s")
	var parts strings.Builder
	for i := 0; ; i++ {
		resp, b := x.get(t, "live/cam/video_e1_part3_"+itoa(i)+".m4s")
		if resp.StatusCode != 200 {
			break
		}
		parts.WriteString(b)
	}
	if parts.String() != seg {
		t.Error("segment bytes differ from its parts")
	}
	// HEAD: headers only; other methods refused.
	req, _ := http.NewRequest(http.MethodHead, x.srv.URL+"/hls/live/cam/video_e1_seg3.m4s", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(seg)) {
		t.Fatalf("HEAD: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, err = http.Post(x.srv.URL+"/hls/live/cam/index.m3u8", "text/plain", nil)
	if err != nil || resp.StatusCode != 405 {
		t.Fatalf("POST: %v %v", err, resp)
	}
	resp.Body.Close()
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestSettingsNotWritten(t *testing.T) {
	s := HLSSettings{}
	h := NewHLS(s, nil)
	defer h.Close()
	if s != (HLSSettings{}) {
		t.Fatal("defaults written back")
	}
	if h.set.Window != 7 || h.set.BlockTimeout != 6*time.Second || h.set.EndGrace != 30*time.Second {
		t.Fatalf("defaults: %+v", h.set)
	}
	h.Close() // twice is fine
}

func TestDiscontinuityPlaylist(t *testing.T) {
	fx := loadFixture(t)
	h := NewHLS(HLSSettings{}, nil)
	defer h.Close()
	st := newHLSStream(h, "live/cam", "e1")
	tm, _ := transmux.New(h.set.tm, fx.Tracks(), st)
	c0 := fx.VideoFrames[0].Config
	c1 := &media.Config{SPS: c0.SPS, PPS: c0.PPS, Width: c0.Width, Height: c0.Height}
	for _, f := range fx.Frames {
		if f.Track == fx.Video && f.DTS >= 4*90000 {
			g := *f
			g.Config = c1 // a real change from 4 s on
			f = &g
		}
		if f.Seconds(f.DTS) >= 6.5 {
			break
		}
		_ = tm.WriteFrame(f)
	}
	st.mu.Lock()
	video := string(st.renderMedia(nil, st.track("video")))
	audio := string(st.renderMedia(nil, st.track("audio")))
	st.mu.Unlock()
	golden(t, "video_discontinuity.m3u8", video)
	for name, pl := range map[string]string{"video": video, "audio": audio} {
		if strings.Count(pl, "#EXT-X-DISCONTINUITY\n") != 1 {
			t.Errorf("%s: want one discontinuity:\n%s", name, pl)
		}
		if _, err := playlist.Unmarshal([]byte(pl)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !strings.Contains(video, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video_e1_init1.mp4\"\n") {
		t.Errorf("video: no new map after the discontinuity:\n%s", video)
	}
	if strings.Count(audio, "#EXT-X-MAP") != 1 {
		t.Errorf("audio init did not change:\n%s", audio)
	}
}

func TestRepublishReplaces(t *testing.T) {
	fx := loadFixture(t)
	reg := media.NewRegistry()
	defer reg.Close()
	sv := transmux.NewService(transmux.Settings{}, nil)
	defer sv.Close()
	h := NewHLS(HLSSettings{}, nil)
	defer h.Close()
	h.Attach(sv)
	sv.Pin(func(*media.Stream) bool { return true }) // packaged from publish, as a recording would
	sv.Attach(reg)
	var epochs []string
	for range 2 {
		s, err := reg.Publish("live/again", fx.Tracks(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fx.Frames[:200] {
			s.Write(f)
		}
		reg.Unpublish(s)
		st := h.stream("live/again")
		if st == nil {
			t.Fatal("no HLS state")
		}
		epochs = append(epochs, st.epoch)
		st.mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ended := st.wait(ctx, func() bool { return st.ended })
		cancel()
		st.mu.Unlock()
		if !ended {
			t.Fatal("stream did not end")
		}
	}
	if epochs[0] == epochs[1] {
		t.Fatal("a new publish must get new file names")
	}
}

// TestDiscontinuityWithoutInitChange: Frame.Discontinuity with the same
// configuration (a publisher that reconnected) gives EXT-X-DISCONTINUITY on
// both media playlists and no new EXT-X-MAP (the init did not change);
// media sequence numbers go on and gohlslib reads the playlists.
func TestDiscontinuityWithoutInitChange(t *testing.T) {
	fx := loadFixture(t)
	h := NewHLS(HLSSettings{}, nil)
	defer h.Close()
	st := newHLSStream(h, "live/cam", "e1")
	tm, _ := transmux.New(h.set.tm, fx.Tracks(), st)
	seen := map[*media.Track]bool{}
	for _, f := range fx.Frames {
		if f.Seconds(f.DTS) >= 6.5 {
			break
		}
		if f.DTS*int64(90000)/int64(f.Track.ClockRate) >= 4*90000 && !seen[f.Track] && (f.Keyframe || f.Track != fx.Video) {
			g := *f
			g.Discontinuity, seen[f.Track] = true, true
			f = &g
		}
		_ = tm.WriteFrame(f)
	}
	st.mu.Lock()
	video := string(st.renderMedia(nil, st.track("video")))
	audio := string(st.renderMedia(nil, st.track("audio")))
	st.mu.Unlock()
	for name, pl := range map[string]string{"video": video, "audio": audio} {
		if strings.Count(pl, "#EXT-X-DISCONTINUITY\n") != 1 || strings.Count(pl, "#EXT-X-MAP") != 1 {
			t.Errorf("%s: want one discontinuity and one map:\n%s", name, pl)
		}
		if !strings.Contains(pl, "seg1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:") {
			t.Errorf("%s: the discontinuity is not before segment 2:\n%s", name, pl)
		}
		if _, err := playlist.Unmarshal([]byte(pl)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestDiscontinuityDatedWhileInProgress: the segment that starts a
// discontinuity is dated while it has only parts (hls.js aligns audio and
// video by date after a discontinuity), and gohlslib reads the playlist.
func TestDiscontinuityDatedWhileInProgress(t *testing.T) {
	fx := loadFixture(t)
	h := NewHLS(HLSSettings{}, nil)
	defer h.Close()
	st := newHLSStream(h, "live/cam", "e1")
	tm, _ := transmux.New(h.set.tm, fx.Tracks(), st)
	c0 := fx.VideoFrames[0].Config
	c1 := &media.Config{SPS: c0.SPS, PPS: c0.PPS, Width: c0.Width, Height: c0.Height}
	for _, f := range fx.Frames {
		if f.Seconds(f.DTS) >= 4.5 {
			break
		}
		if f.Track == fx.Video && f.DTS >= 4*90000 {
			g := *f
			g.Config = c1
			f = &g
		}
		_ = tm.WriteFrame(f)
	}
	st.mu.Lock()
	video := string(st.renderMedia(nil, st.track("video")))
	st.mu.Unlock()
	want := "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video_e1_init1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T12:00:04.000Z\n#EXT-X-PART:"
	if !strings.Contains(video, want) {
		t.Errorf("the segment in progress after the change is not dated:\n%s", video)
	}
	if _, err := playlist.Unmarshal([]byte(video)); err != nil {
		t.Error(err)
	}
}
