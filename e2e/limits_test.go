package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whepclient"
	"github.com/whipcast/whipcast/internal/whipclient"
)

// metric reads one sample from /metrics (which limits.rate does not
// limit): name with its labels exactly as exposed, e.g.
// `whipcast_play_refused_total{reason="max_viewers"}`; -1 when absent.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// whepOffer makes a WHEP (receive-only) offer with the test client, without
// sending it.
func whepOffer(t *testing.T) string {
	t.Helper()
	var offer string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := whepclient.Play(ctx, "", "", whepclient.Options{LoopbackOnly: true,
		Signal: func(_ context.Context, o string) (string, error) { offer = o; return "", errors.New("only the offer") }})
	if err == nil || offer == "" {
		t.Fatalf("making a WHEP offer: %v", err)
	}
	return offer
}

// post POSTs body to url with a client, returning status, Retry-After and
// the body.
func post(t *testing.T, c *http.Client, url, ctype, body string) (int, string, string) {
	t.Helper()
	res, err := c.Post(url, ctype, strings.NewReader(body))
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return 0, "", ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Retry-After"), strings.TrimSpace(string(b))
}

// TestE2EViewerLimits: with limits.max_viewers_per_stream 1 and
// limits.max_viewers 2, a second WHEP viewer of a stream and a third in all
// get 503 with Retry-After and the reason, counted by reason; the admitted
// viewers keep playing, and a place that is given back is taken again.
func TestE2EViewerLimits(t *testing.T) {
	checkNoLeaks(t)
	g := startGateway(t, "audio: {codec: opus}\nlimits:\n  max_cpu: 0\n  max_machine_cpu: 0\n  max_lag: 0s\n  max_viewers_per_stream: 1\n  max_viewers: 2\n")
	base := "http://" + g.HTTPAddr().String()
	opts := whipclient.Options{Loop: 3, MaxDuration: time.Minute}
	for _, s := range []string{"v/a", "v/b", "v/c"} {
		publish(t, g, s, opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	play := func(stream string) *whepclient.Client {
		t.Helper()
		v, err := whepclient.Play(ctx, base+"/whep/"+stream, "", whepclient.Options{LoopbackOnly: true})
		if err != nil {
			t.Fatalf("viewer of %s: %v", stream, err)
		}
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
	va := play("v/a")
	offer := whepOffer(t)
	for _, tc := range []struct{ stream, text, reason string }{
		{"v/a", "overloaded: limits.max_viewers_per_stream (1) reached", "max_viewers_per_stream"},
	} {
		code, retry, body := post(t, http.DefaultClient, base+"/whep/"+tc.stream, "application/sdp", offer)
		if code != http.StatusServiceUnavailable || retry != "5" || body != tc.text {
			t.Fatalf("second viewer of %s: %d Retry-After %q %q, want 503, 5, %q", tc.stream, code, retry, body, tc.text)
		}
	}
	vb := play("v/b")
	code, retry, body := post(t, http.DefaultClient, base+"/whep/v/c", "application/sdp", offer)
	if code != http.StatusServiceUnavailable || retry != "5" || body != "overloaded: limits.max_viewers (2) reached" {
		t.Fatalf("third viewer in all: %d Retry-After %q %q", code, retry, body)
	}
	for _, r := range []string{"max_viewers_per_stream", "max_viewers"} {
		if n := metric(t, base, `whipcast_play_refused_total{reason="`+r+`"}`); n != 1 {
			t.Errorf("whipcast_play_refused_total{reason=%q} = %v, want 1", r, n)
		}
	}
	if n := metric(t, base, "whipcast_whep_viewers"); n != 2 {
		t.Errorf("whipcast_whep_viewers = %v, want 2", n)
	}
	if st := limitsState(t, base); st.Viewers != 2 || st.MaxViewers != 2 || st.MaxViewersPerStream != 1 ||
		st.ViewersRefused["max_viewers"] != 1 || st.ViewersRefused["max_viewers_per_stream"] != 1 {
		t.Errorf("/v1/limits: %+v", st)
	}
	// The refusals cost the admitted viewers nothing.
	a0, b0 := va.Stats().VideoFrames, vb.Stats().VideoFrames
	waitFor(t, 15*time.Second, "both admitted viewers to receive 30 more frames", func() bool {
		return va.Stats().VideoFrames >= a0+30 && vb.Stats().VideoFrames >= b0+30
	})
	// A viewer that leaves gives its place back.
	if err := va.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the viewer's place to be free", func() bool { return metric(t, base, "whipcast_whep_viewers") == 1 })
	vc := play("v/c")
	waitFor(t, 15*time.Second, "the new viewer's frames", func() bool { return vc.Stats().VideoFrames >= 30 })
}

// floodClient is an HTTP client whose connections come from local, a
// loopback address of its own (127.0.0.N): limits.rate keys on it.
func floodClient(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// TestE2EWHIPFlood: two live publishers are being packaged into HLS while
// a bounded flood of WHIP POSTs (valid offers, malformed offers, bad
// names) and API requests comes from four other loopback addresses, eight
// goroutines, 400 requests, with limits.rate and limits.max_publishers
// set. Every refusal has its status (429 over the rate, 503 at the
// publisher limit, 400 malformed), the metrics count exactly what the
// flood saw, the admitted offers that never connect are closed by
// limits.ice_timeout with their names freed, and then sessions and
// goroutines are back where they were. The live streams went on
// throughout: their segments kept coming with no discontinuity, and their
// publishers' receiver reports show no packet lost.
func TestE2EWHIPFlood(t *testing.T) {
	checkNoLeaks(t)
	g := startGateway(t, "limits:\n  max_cpu: 0\n  max_machine_cpu: 0\n  max_lag: 0s\n  max_publishers: 4\n  ice_timeout: 3s\n"+
		"  rate: {requests: 10, burst: 20}\n")
	base := "http://" + g.HTTPAddr().String()
	opts := whipclient.Options{Loop: 4, MaxDuration: time.Minute}
	pubs := []*whipclient.Client{publish(t, g, "live/a", opts), publish(t, g, "live/b", opts)}
	hls := []string{videoPlaylistURL(t, base, "live/a"), videoPlaylistURL(t, base, "live/b")}
	seg0 := []int{segmentsMade(t, hls[0]), segmentsMade(t, hls[1])}
	frames0 := []float64{metric(t, base, `whipcast_stream_frames_in_total{stream="live/a"}`), metric(t, base, `whipcast_stream_frames_in_total{stream="live/b"}`)}
	offer := aliceOffer(t)
	http.DefaultClient.CloseIdleConnections()
	goroutines0 := runtime.NumGoroutine()

	// The flood: 4 addresses × 2 goroutines × 50 requests, each a
	// valid offer to a new name, a malformed offer, a bad stream name, or
	// an API read, in turn.
	type result struct{ kind, code string }
	var mu sync.Mutex
	counts := map[result]int{}
	var wg sync.WaitGroup
	var clients []*http.Client
	for ip := 2; ip <= 5; ip++ {
		c := floodClient(fmt.Sprintf("127.0.0.%d", ip))
		clients = append(clients, c)
		for gr := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					var kind string
					var code int
					switch i % 4 {
					case 0:
						kind = "valid"
						code, _, _ = post(t, c, fmt.Sprintf("%s/whip/flood/%d-%d-%d", base, ip, gr, i), "application/sdp", offer)
					case 1:
						kind = "malformed"
						code, _, _ = post(t, c, fmt.Sprintf("%s/whip/flood/m%d-%d-%d", base, ip, gr, i), "application/sdp", "v=0\r\nthis is not SDP\r\n")
					case 2:
						kind = "badname"
						code, _, _ = post(t, c, base+"/whip/flood/bad%20name", "application/sdp", offer)
					case 3:
						kind = "api"
						res, err := c.Get(base + "/v1/streams")
						if err != nil {
							t.Errorf("GET /v1/streams: %v", err)
							continue
						}
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
						code = res.StatusCode
					}
					mu.Lock()
					counts[result{kind, strconv.Itoa(code)}]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	t.Logf("flood results: %v", counts)

	// Each refusal has its status; nothing else came back.
	allowed := map[string][]string{
		"valid":     {"201", "429", "503"},
		"malformed": {"400", "429", "503"}, // at the publisher limit admission answers first
		"badname":   {"400", "429"},
		"api":       {"200", "429"},
	}
	var created, limited, refused, limitedAPI int
	for r, n := range counts {
		ok := false
		for _, c := range allowed[r.kind] {
			ok = ok || c == r.code
		}
		if !ok {
			t.Errorf("%d %s requests got %s", n, r.kind, r.code)
		}
		switch {
		case r.code == "201":
			created += n
		case r.code == "429" && r.kind == "api":
			limitedAPI += n
		case r.code == "429":
			limited += n
		case r.code == "503":
			refused += n
		}
	}
	if counts[result{"badname", "400"}] == 0 || limited == 0 || limitedAPI == 0 || refused == 0 {
		t.Errorf("want 400, 429 (WHIP and API) and 503 among the results: %v", counts)
	}
	if created > 2 {
		t.Errorf("%d flood publishes admitted with 2 places left under limits.max_publishers", created)
	}
	for _, m := range []struct {
		series string
		want   int
	}{
		{`whipcast_http_rate_limited_total{route="whip"}`, limited},
		{`whipcast_http_rate_limited_total{route="api"}`, limitedAPI},
		{`whipcast_http_rate_limited_total{route="whep"}`, 0},
		{`whipcast_publish_refused_total{reason="max_publishers"}`, refused},
	} {
		if got := metric(t, base, m.series); got != float64(m.want) {
			t.Errorf("%s = %v, want %d (what the flood saw)", m.series, got, m.want)
		}
	}

	// The admitted flood offers never connect: limits.ice_timeout closes
	// them and frees their names; then only the live publishers are left.
	defer func() {
		if t.Failed() {
			_, m := get(t, base+"/metrics")
			for _, l := range strings.Split(m, "\n") {
				if strings.Contains(l, "timeouts") || strings.HasPrefix(l, "whipcast_publishers") || strings.HasPrefix(l, "whipcast_streams") {
					t.Log(l)
				}
			}
		}
	}()
	waitFor(t, 20*time.Second, "the flood's sessions to time out", func() bool {
		return metric(t, base, `whipcast_session_timeouts_total{reason="ice",role="publish"}`) == float64(created) &&
			metric(t, base, "whipcast_publishers") == 2
	})
	if n := metric(t, base, "whipcast_streams_live"); n != 2 {
		t.Errorf("whipcast_streams_live = %v after the flood, want the 2 live publishers", n)
	}
	waitFor(t, 20*time.Second, "goroutines back to the count before the flood", func() bool {
		http.DefaultClient.CloseIdleConnections() // this test's own reads
		return runtime.NumGoroutine() <= goroutines0
	})

	// The live streams went on: new segments, no discontinuity, every
	// frame and packet through.
	waitFor(t, 20*time.Second, "both live streams to add two segments after the flood", func() bool {
		return segmentsMade(t, hls[0]) >= seg0[0]+2 && segmentsMade(t, hls[1]) >= seg0[1]+2
	})
	for i, s := range []string{"live/a", "live/b"} {
		if _, pl := get(t, hls[i]); strings.Contains(pl, "#EXT-X-DISCONTINUITY") {
			t.Errorf("%s: the playlist has a discontinuity:\n%s", s, pl)
		}
		if f := metric(t, base, `whipcast_stream_frames_in_total{stream="`+s+`"}`); f <= frames0[i] {
			t.Errorf("%s: frames in %v, %v before the flood", s, f, frames0[i])
		}
		for _, series := range []string{"whipcast_ingest_packets_lost_total", "whipcast_ingest_frames_dropped_total"} {
			if n := metric(t, base, series+`{stream="`+s+`"}`); n != 0 {
				t.Errorf("%s: %s = %v, want 0", s, series, n)
			}
		}
		if st := pubs[i].Stats(); st.Lost != 0 {
			t.Errorf("%s: the publisher's receiver reports say %d packets lost", s, st.Lost)
		}
	}
}
