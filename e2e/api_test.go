package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/web"
)

// TestE2EAPIEventsMetrics drives the control surface through a real
// gateway: an events WebSocket sees stream.started on publish; the API
// shows the stream (tracks, picture size, bitrate), starts and stops a
// recording, lists it once stored and serves its MP4; /metrics counts the
// publish and the frames; leaving sends stream.ended. The admin token
// guards it all.
func TestE2EAPIEventsMetrics(t *testing.T) {
	checkNoLeaks(t)
	const admin = "adm1n"
	g := startGateway(t, "auth:\n  admin_token: "+admin+"\n")
	base := "http://" + g.HTTPAddr().String()
	const stream = "e2e/api"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	api := func(method, path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	if code, _ := get(t, base+"/v1/streams"); code != http.StatusUnauthorized {
		t.Fatalf("API without the admin token: %d, want 401", code)
	}

	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/v1/events?token="+admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	next := func(want string) web.Event {
		t.Helper()
		for {
			rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
			_, b, err := ws.Read(rctx)
			rcancel()
			if err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			var e web.Event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if e.Type == want {
				return e
			}
		}
	}
	next("hello")

	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio,
		whipclient.Options{LoopbackOnly: true, Loop: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if e := next("stream.started"); e.Stream != stream {
		t.Fatalf("stream.started for %q", e.Stream)
	}

	// The picture size is known from the first keyframe on.
	var st map[string]any
	waitFor(t, 10*time.Second, "the stream's picture size", func() bool {
		_, st = api("GET", "/v1/streams/"+stream)
		tr, _ := st["tracks"].([]any)
		return len(tr) == 2 && tr[0].(map[string]any)["width"] != nil
	})
	time.Sleep(1100 * time.Millisecond) // one bitrate interval
	_, st = api("GET", "/v1/streams/"+stream)
	if br := st["bitrate_in"].(float64); br < 50e3 || br > 20e6 {
		t.Errorf("bitrate_in %.0f bit/s", br)
	}
	t.Logf("stream: tracks %v, bitrate_in %.0f bit/s, readers %v, ingest %v", st["tracks"], st["bitrate_in"], st["readers"], st["ingest"])
	if in, ok := st["ingest"].(map[string]any); !ok || in["rtp_packets"].(float64) < 50 || in["loss_percent"].(float64) != 0 {
		t.Errorf("ingest counters in the stream details: %v", st["ingest"])
	}

	code, rec := api("POST", "/v1/streams/"+stream+"/recording")
	if code != http.StatusCreated {
		t.Fatalf("start recording: %d %v", code, rec)
	}
	key := rec["key"].(string)
	if code, _ := api("POST", "/v1/streams/"+stream+"/recording"); code != http.StatusConflict {
		t.Errorf("second start: %d, want 409", code)
	}
	next("recording.started")
	time.Sleep(4500 * time.Millisecond) // two segments
	if code, _ := api("DELETE", "/v1/streams/"+stream+"/recording"); code != http.StatusOK {
		t.Fatalf("stop recording: %d", code)
	}
	if e := next("recording.finished"); e.Data["key"] != key {
		t.Errorf("recording.finished %v, want key %s", e.Data, key)
	}
	var mp4 string
	waitFor(t, 10*time.Second, "the recording in the store", func() bool {
		_, l := api("GET", "/v1/recordings?stream="+stream)
		for _, r := range l["recordings"].([]any) {
			r := r.(map[string]any)
			if r["key"] == key && r["complete"] == true {
				mp4, _ = r["mp4"].(string)
			}
		}
		return mp4 != ""
	})
	req, _ := http.NewRequest("GET", base+mp4, nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Range", "bytes=0-7")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || res.Header.Get("Content-Type") != "video/mp4" {
		t.Errorf("GET %s: %d %s", mp4, res.StatusCode, res.Header.Get("Content-Type"))
	}

	// Metrics, scraped while live.
	code, metrics := get(t, base+"/hls/"+stream+"/index.m3u8")
	if code != http.StatusOK {
		t.Fatalf("playlist %d", code)
	}
	_, metrics = get(t, base+"/metrics")
	metric := func(name string) float64 {
		m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(name) + " (\\S+)$").FindStringSubmatch(metrics)
		if m == nil {
			t.Errorf("no %s in /metrics", name)
			return 0
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		return v
	}
	if v := metric("whipcast_streams_live"); v != 1 {
		t.Errorf("whipcast_streams_live %v", v)
	}
	if v := metric(`whipcast_whip_publishes_total{result="ok"}`); v != 1 {
		t.Errorf("publishes ok %v", v)
	}
	if v := metric(`whipcast_stream_frames_in_total{stream="` + stream + `"}`); v < 100 {
		t.Errorf("frames in %v", v)
	}
	if v := metric(`whipcast_http_media_requests_total{code="200",format="hls",kind="playlist"}`); v < 1 {
		t.Errorf("hls playlist requests %v", v)
	}
	metric("whipcast_spool_uploaded_total")
	metric("whipcast_recordings_open")
	// Ingest and packaging health, as an operator reads it.
	label := `{stream="` + stream + `"}`
	if v := metric("whipcast_ingest_rtp_packets_total" + label); v < 100 {
		t.Errorf("RTP packets in %v", v)
	}
	if v := metric("whipcast_ingest_packets_lost_total" + label); v != 0 {
		t.Errorf("packets lost on loopback: %v", v)
	}
	if v := metric("whipcast_ingest_plis_sent_total" + label); v < 1 {
		t.Errorf("PLIs sent %v: at least the one at publish", v)
	}
	if v := metric("whipcast_ingest_keyframe_interval_seconds" + label); v < 1.5 || v > 2.5 {
		t.Errorf("keyframe interval %v s, the fixture has a 2 s GOP", v)
	}
	metric("whipcast_ingest_nacks_sent_total")
	if v := metric(`whipcast_http_media_bytes_total{format="hls"}`); v <= 0 {
		t.Errorf("HLS bytes out %v", v)
	}
	if n, sum := metric("whipcast_segment_production_lag_seconds_count"), metric("whipcast_segment_production_lag_seconds_sum"); n < 1 || sum/n < 0 || sum/n > 5 {
		t.Errorf("segment production lag: %v segments, mean %v s", n, sum/n)
	} else {
		t.Logf("segment production lag: mean %.3f s over %v segments", sum/n, n)
	}

	pub.Close()
	if e := next("stream.ended"); e.Stream != stream {
		t.Fatalf("stream.ended for %q", e.Stream)
	}
	if code, body := api("GET", "/v1/streams/"+stream); code != http.StatusNotFound || body["code"] != "stream_not_found" {
		t.Errorf("ended stream: %d %v", code, body)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}
