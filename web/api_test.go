package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/whipcast/whipcast/media"
)

type fakeStreams map[string]*media.Stream

func (f fakeStreams) List() []*media.Stream {
	var out []*media.Stream
	for _, s := range f {
		out = append(out, s)
	}
	return out
}

func (f fakeStreams) Get(n string) (*media.Stream, bool) { s, ok := f[n]; return s, ok }

func TestMatchPath(t *testing.T) {
	for _, tc := range []struct {
		tmpl, path string
		want       map[string]string
	}{
		{"/v1/streams", "/v1/streams", map[string]string{}},
		{"/v1/streams/{stream}", "/v1/streams/a/b", map[string]string{"stream": "a/b"}},
		{"/v1/streams/{stream}/recording", "/v1/streams/a/b/recording", map[string]string{"stream": "a/b"}},
		{"/v1/streams/{stream}/recording", "/v1/streams/recording", nil},
		{"/v1/streams/{stream}/outputs/{id}", "/v1/streams/s/x/outputs/7", map[string]string{"stream": "s/x", "id": "7"}},
		{"/v1/streams/{stream}", "/v1/streams/a//b", nil},
		{"/v1/streams/{stream}", "/v1/streams/", nil},
		{"/v1/recordings/{key}", "/v1/recordings/cam/20260101T000000Z/recording.mp4", map[string]string{"key": "cam/20260101T000000Z/recording.mp4"}},
	} {
		got, ok := matchPath(tc.tmpl, tc.path)
		if ok != (tc.want != nil) {
			t.Errorf("%s %s: ok=%v", tc.tmpl, tc.path, ok)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s %s: %s=%q, want %q", tc.tmpl, tc.path, k, got[k], v)
			}
		}
	}
}

// TestOpenAPIInSync: every route the API serves is in openapi.json, and
// the document names no /v1 route the API does not serve.
func TestOpenAPIInSync(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		if !strings.HasPrefix(p, "/v1/") {
			continue // /whip and /whep: the ingest handlers', tested in ingest
		}
		for m := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	api := NewAPI(APIOptions{Streams: fakeStreams{}})
	for _, r := range api.Routes() {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
		delete(documented, r)
	}
	for r := range documented {
		t.Errorf("openapi.json names %s, which the API does not serve", r)
	}
	// docs/api.md names each route too.
	md, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range api.Routes() {
		if !strings.Contains(string(md), "`"+r+"`") {
			t.Errorf("docs/api.md does not name `%s`", r)
		}
	}
}

func TestAPIErrorsAndStreams(t *testing.T) {
	s := media.NewStream("studio/main", []*media.Track{{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}}, nil)
	cfg := &media.Config{Width: 1280, Height: 720}
	s.Write(&media.Frame{Track: s.Tracks[0], Keyframe: true, Config: cfg, Data: make([]byte, 1000)})
	api := NewAPI(APIOptions{Streams: fakeStreams{"studio/main": s}})
	do := func(method, path string) (int, map[string]any) {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = "127.0.0.1:1"
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body
	}
	code, body := do("GET", "/v1/streams/studio/main")
	if code != 200 || body["name"] != "studio/main" {
		t.Fatalf("%d %v", code, body)
	}
	tr := body["tracks"].([]any)[0].(map[string]any)
	if tr["codec"] != "h264" || tr["width"] != 1280.0 || tr["height"] != 720.0 {
		t.Errorf("track %v", tr)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v1/streams/nope", 404, "stream_not_found"},
		{"GET", "/v1/streams/bad%20name", 400, "bad_stream_name"},
		{"POST", "/v1/streams/studio/main/recording", 501, "not_implemented"},
		{"POST", "/v1/streams/studio/main/outputs", 501, "not_implemented"},
		{"PUT", "/v1/streams", 405, "method_not_allowed"},
		{"GET", "/v1/nothing", 404, "not_found"},
		{"GET", "/v1/recordings", 501, "not_implemented"},
	} {
		code, body := do(tc.method, tc.path)
		if code != tc.status || body["code"] != tc.code || body["error"] == "" {
			t.Errorf("%s %s: %d %v, want %d %s", tc.method, tc.path, code, body, tc.status, tc.code)
		}
	}
	if code, body := do("GET", "/v1/streams/studio/main/outputs"); code != 200 || len(body["outputs"].([]any)) != 0 {
		t.Errorf("outputs: %d %v", code, body)
	}
}

func TestRewritePlaylists(t *testing.T) {
	pl := "#EXTM3U\n#EXT-X-MAP:URI=\"video_e_init0.mp4\"\n#EXT-X-PART:DURATION=0.2,URI=\"video_e_part1_0.m4s\"\n#EXTINF:2.0,\nvideo_e_seg1.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video_e_part2_1.m4s\"\n"
	got := string(rewriteM3U8([]byte(pl), "token=a%2Bb"))
	for _, want := range []string{`URI="video_e_init0.mp4?token=a%2Bb"`, `URI="video_e_part1_0.m4s?token=a%2Bb"`, "\nvideo_e_seg1.m4s?token=a%2Bb\n", `URI="video_e_part2_1.m4s?token=a%2Bb"`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
	mpd := `<SegmentTemplate initialization="v_e_init0.mp4" media="v_e_$Number$.m4s"></SegmentTemplate>`
	if got := string(rewriteMPD([]byte(mpd), "token=x")); got != `<SegmentTemplate initialization="v_e_init0.mp4?token=x" media="v_e_$Number$.m4s?token=x"></SegmentTemplate>` {
		t.Errorf("mpd: %s", got)
	}
}

func TestPlayGate(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		_, _ = w.Write([]byte("#EXTM3U\nvideo.m3u8\n"))
	})
	h := gatePlay((&Auth{Play: "p"}).PlayAuth(), inner)
	for _, tc := range []struct {
		url, auth string
		code      int
		body      string
	}{
		{"/cam/index.m3u8", "", 401, ""},
		{"/cam/index.m3u8?token=x", "", 403, ""},
		{"/cam/index.m3u8?token=p", "", 200, "video.m3u8?token=p"},
		{"/cam/index.m3u8", "Bearer p", 200, "\nvideo.m3u8\n"},
		{"/cam/video_e_seg1.m4s", "", 401, ""},
	} {
		r := httptest.NewRequest("GET", tc.url, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s: %d %q", tc.url, w.Code, w.Body)
		}
	}
}

func TestBusDropsSlowSubscriber(t *testing.T) {
	b := &Bus{Queue: 2}
	slow, fast := b.Subscribe(), b.Subscribe()
	for i := 0; i < 3; i++ {
		b.Publish(Event{Type: "x"})
		<-fast.C // a subscriber that keeps up
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 2 || !slow.Dropped() {
		t.Fatalf("slow subscriber got %d events, dropped=%v", n, slow.Dropped())
	}
	b.Close()
	if fast.Dropped() {
		t.Fatal("fast subscriber dropped")
	}
}
