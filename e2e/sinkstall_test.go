package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/web"
)

// stuckDisk is the spool as the recorder and the origin see it on a disk
// that stops answering: every write waits until release.
type stuckDisk struct {
	gateway.Spooler
	gate chan struct{}
	once sync.Once
}

func (d *stuckDisk) release() { d.once.Do(func() { close(d.gate) }) }

func (d *stuckDisk) Put(key string, b []byte) error {
	<-d.gate
	return d.Spooler.Put(key, b)
}

func (d *stuckDisk) PutFunc(key string, w func(io.Writer) error) error {
	<-d.gate
	return d.Spooler.PutFunc(key, w)
}

func (d *stuckDisk) Delete(key string) error {
	<-d.gate
	return d.Spooler.Delete(key)
}

// partPos is the position of a playlist's newest part: the segment's MSN
// and the part's index in it, and whether that segment is complete.
type partPos struct {
	msn, part int
	complete  bool
}

// next is the part to ask for after p.
func (p partPos) next() (msn, part int) {
	if p.complete {
		return p.msn + 1, 0
	}
	return p.msn, p.part + 1
}

func (p partPos) after(q partPos) bool { return p.msn > q.msn || p.msn == q.msn && p.part > q.part }

// lastPart reads an LL-HLS media playlist's newest part.
func lastPart(t *testing.T, body string) partPos {
	t.Helper()
	pl, err := playlist.Unmarshal([]byte(body))
	if err != nil {
		t.Fatalf("media playlist: %v\n%s", err, body)
	}
	m, ok := pl.(*playlist.Media)
	if !ok {
		t.Fatalf("not a media playlist:\n%s", body)
	}
	msn := m.MediaSequence + len(m.Segments)
	if len(m.Parts) > 0 {
		return partPos{msn, len(m.Parts) - 1, false}
	}
	if n := len(m.Segments); n > 0 && len(m.Segments[n-1].Parts) > 0 {
		return partPos{msn - 1, len(m.Segments[n-1].Parts) - 1, true}
	}
	t.Fatalf("no part in the media playlist:\n%s", body)
	return partPos{}
}

// followParts asks for the next part n times with LL-HLS blocking reload
// (RFC 8216bis 6.2.5.2: the server holds the request until the part
// exists): each answer must hold a part newer than the last, so the live
// stream gained every one of those parts while we watched.
func followParts(t *testing.T, url string, n int) {
	t.Helper()
	code, body := getWithin(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d", url, code)
	}
	pos := lastPart(t, body)
	for range n {
		// The next part: the next index in this segment, or part 0 of the
		// next segment once this one is complete. A request for an index
		// past a segment's last part is answered when the segment
		// completes: then the answer holds no newer part, but the segment
		// is complete, which is progress too.
		msn, part := pos.next()
		code, body = getWithin(t, fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", url, msn, part))
		if code != http.StatusOK {
			t.Fatalf("blocking reload for part %d.%d: %d\n%s", msn, part, code, body)
		}
		next := lastPart(t, body)
		if !next.after(pos) && !(next == partPos{pos.msn, pos.part, true} && !pos.complete) {
			t.Fatalf("blocking reload for part %d.%d answered with part %d.%d", msn, part, next.msn, next.part)
		}
		pos = next
	}
}

// lastDASHSegment is the start time of the newest segment of the first
// adaptation set (video) of the live MPD's last Period.
func lastDASHSegment(t *testing.T, url string) (uint64, int) {
	t.Helper()
	code, body := getWithin(t, url)
	if code != http.StatusOK {
		return 0, code
	}
	var m mpd
	if err := xml.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, body)
	}
	if len(m.Periods) == 0 {
		return 0, code
	}
	_, segs := m.segments(len(m.Periods)-1, 0)
	if len(segs) == 0 {
		return 0, code
	}
	return segs[len(segs)-1].t, code
}

// TestE2ESinkStall: a stream is recorded and published to the origin while
// the disk under both stops answering. Live LL-HLS gains every part and
// live DASH new segments all along; the recording and the origin publish
// say "retrying" with the reason (API, events, metrics) and drop segments
// instead of waiting. Once the disk answers, both resume at a segment
// boundary, the recording is finalised with the gap marked, and no
// goroutine is left behind.
func TestE2ESinkStall(t *testing.T) {
	checkNoLeaks(t)
	disk := &stuckDisk{gate: make(chan struct{})}
	gateway.WrapSpool = func(sp gateway.Spooler) gateway.Spooler {
		disk.Spooler = sp
		return disk
	}
	t.Cleanup(func() { gateway.WrapSpool = nil })
	dir := t.TempDir()
	g := startGateway(t, fmt.Sprintf(`storage:
  path: %s/recordings
  spool_dir: %s/spool
  shutdown_timeout: 5s
  queue: 1
origin: { keep: true }
streams:
  - match: "*"
    record: true
    origin: true
`, dir, dir))
	t.Cleanup(disk.release) // before the gateway stops, whatever happened
	gateway.WrapSpool = nil
	base := "http://" + g.HTTPAddr().String()
	const stream = "stall/cam"

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []web.Event
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var e web.Event
			if json.Unmarshal(b, &e) == nil && e.Stream == stream {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}
		}
	}()
	defer func() {
		ws.CloseNow()
		<-readerDone
	}()
	event := func(typ string) (web.Event, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Type == typ {
				return e, true
			}
		}
		return web.Event{}, false
	}
	recording := func() (state, reason string, dropped int) {
		code, body := getWithin(t, base+"/v1/streams/"+stream+"/recording")
		if code != http.StatusOK {
			return "", "", 0
		}
		var a struct {
			State   string `json:"state"`
			Error   string `json:"error"`
			Dropped int    `json:"dropped_segments"`
		}
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("recording: %v\n%s", err, body)
		}
		return a.State, a.Error, a.Dropped
	}

	// The origin publish's state, from the stream's API view.
	originState := func() (state, reason string, dropped int) {
		code, body := getWithin(t, base+"/v1/streams/"+stream)
		if code != http.StatusOK {
			return "", "", 0
		}
		var si struct {
			Origin *struct {
				State   string `json:"state"`
				Error   string `json:"error"`
				Dropped int    `json:"dropped_segments"`
			} `json:"origin"`
		}
		if err := json.Unmarshal([]byte(body), &si); err != nil {
			t.Fatalf("stream: %v\n%s", err, body)
		}
		if si.Origin == nil {
			return "", "", 0
		}
		return si.Origin.State, si.Origin.Error, si.Origin.Dropped
	}

	pub := publish(t, g, stream, whipclient.Options{Loop: 3})

	// The disk is stuck from the start: with one segment of queue per
	// track the recording and the origin fall behind within a few segments.
	waitFor(t, 60*time.Second, "the recording to be retrying", func() bool {
		state, _, _ := recording()
		return state == "retrying"
	})
	_, reason, _ := recording()
	if !strings.Contains(reason, "storage too slow") {
		t.Errorf("recording retrying for %q, want the reason in words", reason)
	}
	waitFor(t, 30*time.Second, "recording.retrying and origin.retrying events", func() bool {
		_, r := event("recording.retrying")
		_, o := event("origin.retrying")
		return r && o
	})
	if e, _ := event("recording.retrying"); e.Data["error"] == nil {
		t.Errorf("recording.retrying without its error: %+v", e)
	}
	if st, reason, dropped := originState(); st != "retrying" || !strings.Contains(reason, "storage too slow") || dropped == 0 {
		t.Errorf("origin in the API while the disk is stuck: %q %q, %d dropped; want retrying, the reason, drops", st, reason, dropped)
	}

	// Live HLS and DASH go on while both writers are stuck.
	code, mv := getWithin(t, base+"/hls/"+stream+"/index.m3u8")
	if code != http.StatusOK {
		t.Fatalf("multivariant playlist: %d", code)
	}
	var video string
	for _, u := range mediaPlaylists(mv) {
		if strings.Contains(u, "video") {
			video = base + "/hls/" + stream + "/" + u
		}
	}
	if video == "" {
		t.Fatalf("no video playlist in\n%s", mv)
	}
	followParts(t, video, 15) // 3 s of 200 ms parts
	mpdURL := base + "/dash/" + stream + "/manifest.mpd"
	start, code := lastDASHSegment(t, mpdURL)
	if code != http.StatusOK {
		t.Fatalf("MPD: %d", code)
	}
	waitFor(t, 30*time.Second, "two new DASH segments", func() bool {
		now, _ := lastDASHSegment(t, mpdURL)
		return now >= start+2*2*90000 // two 2 s segments at 90 kHz
	})
	if st, _, _ := recording(); st != "retrying" {
		t.Fatalf("recording %q before the disk answers again, want retrying", st)
	}
	metrics := scrape(t, base)
	for _, sink := range []string{"recorder", "origin"} {
		if v := metricValue(metrics, `whipcast_sink_segments_dropped_total{sink="`+sink+`"}`); v < 1 {
			t.Errorf("whipcast_sink_segments_dropped_total{sink=%q} = %v, want drops counted", sink, v)
		}
	}

	// The disk answers again: both resume at the next segment boundary,
	// and live HLS still gains every part.
	disk.release()
	waitFor(t, 60*time.Second, "the recording to be live again", func() bool {
		st, _, _ := recording()
		return st == "live"
	})
	waitFor(t, 30*time.Second, "recording.resumed and origin.resumed events", func() bool {
		_, r := event("recording.resumed")
		_, o := event("origin.resumed")
		return r && o
	})
	if st, reason, _ := originState(); st != "live" || reason != "" {
		t.Errorf("origin in the API once the disk answers: %q %q, want live", st, reason)
	}
	followParts(t, video, 5)

	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	waitFor(t, 30*time.Second, "recording.finished", func() bool {
		_, ok := event("recording.finished")
		return ok
	})

	// The recording is finished with the gap visible, and it plays.
	recs, _ := filepath.Glob(filepath.Join(dir, "recordings", stream, "*", "index.m3u8"))
	if len(recs) != 1 {
		t.Fatalf("recordings: %v", recs)
	}
	rec := filepath.Dir(recs[0])
	disc := 0
	for _, f := range []string{"video.m3u8", "audio.m3u8"} {
		pl, err := os.ReadFile(filepath.Join(rec, f))
		if err != nil {
			t.Fatal(err)
		}
		disc += strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n")
	}
	if disc == 0 {
		t.Error("the recording's playlists do not mark the gap with EXT-X-DISCONTINUITY")
	}
	// ffmpegDecodeErrors: the null muxer's complaint about two frames on
	// one tick of its guessed frame rate says nothing about the file.
	if s := ffmpegDecodeErrors(filepath.Join(rec, "recording.mp4")); s != "" {
		t.Errorf("ffmpeg decode of recording.mp4: %s", s)
	}
	// The origin's playlists name gaps for what it dropped, and end.
	waitFor(t, 30*time.Second, "the origin's ended playlists", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "recordings", "live", stream, "video.m3u8"))
		return err == nil && strings.HasSuffix(string(b), "#EXT-X-ENDLIST\n")
	})
	gaps := 0
	for _, f := range []string{"video.m3u8", "audio.m3u8"} {
		b, _ := os.ReadFile(filepath.Join(dir, "recordings", "live", stream, f))
		gaps += strings.Count(string(b), "#EXT-X-GAP\n")
	}
	if gaps == 0 {
		t.Error("the origin's playlists show no EXT-X-GAP for the segments it dropped")
	}
}

// stallClient bounds every request of TestE2ESinkStall: with a sink that
// blocks the transmuxer, requests hang (the API's recording state waits on
// the stuck sink), and the test must fail rather than wait for go test's
// timeout.
var stallClient = &http.Client{Timeout: 30 * time.Second}

// getWithin is get with stallClient.
func getWithin(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := stallClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// scrape returns the gateway's /metrics text.
func scrape(t *testing.T, base string) string {
	t.Helper()
	code, body := getWithin(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return body
}

// metricValue is the value of one sample of a /metrics text, -1 if absent.
func metricValue(text, sample string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
