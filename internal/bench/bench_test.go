package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/wish"
)

func TestExpand(t *testing.T) {
	name := streamName("bench{i}", 7)
	if name != "bench7" {
		t.Fatalf("name %q", name)
	}
	for _, tc := range []struct{ tmpl, want string }{
		{"http://127.0.0.1:8080/whip/{name}", "http://127.0.0.1:8080/whip/bench7"},
		{"http://127.0.0.1:8889/{name}/whip", "http://127.0.0.1:8889/bench7/whip"},
		{"http://h/{name}/{i}/{name}?x={other}", "http://h/bench7/7/bench7?x={other}"},
	} {
		if got := expand(tc.tmpl, name, 7); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	if s := summarize(nil); s != (Summary{}) {
		t.Fatalf("empty: %+v", s)
	}
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	if s != (Summary{N: 100, P50: 50, P95: 95, Max: 100}) {
		t.Fatalf("1..100 ms: %+v", s)
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("summarize sorted its input")
	}
	s = summarize([]time.Duration{1500 * time.Microsecond})
	if s != (Summary{N: 1, P50: 1.5, P95: 1.5, Max: 1.5}) {
		t.Fatalf("one sample: %+v", s)
	}
	// Nearest rank: of 3 samples, p50 is the 2nd and p95 the 3rd.
	s = summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	if s.P50 != 2 || s.P95 != 3 {
		t.Fatalf("three samples: %+v", s)
	}
}

func TestProcParsing(t *testing.T) {
	// A command name with a space and a parenthesis, as /proc shows it.
	stat := "4242 (who (cast) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 555 1000000 2000 18446744073709551615\n"
	cpu, err := procCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if cpu != 3250*time.Millisecond { // (250 + 75) ticks at 100 Hz
		t.Fatalf("cpu %v, want 3.25s", cpu)
	}
	if _, err := procCPU("4242 whipcast S 1"); !errors.Is(err, ErrProc) {
		t.Fatalf("no name: %v", err)
	}
	if _, err := procCPU("4242 (x) S 1 2"); !errors.Is(err, ErrProc) {
		t.Fatalf("short: %v", err)
	}

	status := "Name:\twhipcast\nVmPeak:\t 2000000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n"
	hwm, rss, err := procMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if hwm != 200<<20 || rss != 100<<20 {
		t.Fatalf("hwm %d rss %d", hwm, rss)
	}
	if _, _, err := procMemory("Name:\tx\nVmRSS:\t 1 kB\n"); !errors.Is(err, ErrProc) {
		t.Fatalf("no VmHWM: %v", err)
	}
	if _, _, err := procMemory("VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n"); !errors.Is(err, ErrProc) {
		t.Fatalf("bad unit: %v", err)
	}

	busy, total, err := machineCPU("cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 1 2 3 4 5 6 7 8\n")
	if err != nil {
		t.Fatal(err)
	}
	// user nice system irq softirq steal = 160; + idle iowait = 980; guest not added twice.
	if busy != 160 || total != 980 {
		t.Fatalf("busy %d total %d", busy, total)
	}
	if _, _, err := machineCPU("intr 1 2 3"); !errors.Is(err, ErrProc) {
		t.Fatalf("not cpu: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-n", "4", "-whip", "http://x/{name}/whip", "-phase", "spread", "-gop", "2s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
	for i, w := range want {
		if got := c.offset(i); got != w {
			t.Errorf("spread offset(%d) = %v, want %v", i, got, w)
		}
	}
	c.Phase = "aligned"
	if c.offset(3) != 0 {
		t.Error("aligned publishers start together")
	}
	for _, args := range [][]string{{"-n", "0"}, {"-phase", "random"}, {"-duration", "0s"}, {"-retry", "-1s"}, {"extra"}} {
		if _, err := parseFlags(args, &bytes.Buffer{}); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want ErrUsage", args, err)
		}
	}
	var out, errb bytes.Buffer
	if code := Run([]string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-whip") {
		t.Errorf("-h: exit %d, usage %q", code, errb.String())
	}
	if code := Run([]string{"-phase", "x"}, &out, &errb); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code := Run([]string{"-video", "/nonexistent.h264"}, &out, &errb); code != 2 {
		t.Errorf("missing file: exit %d, want 2", code)
	}
}

func TestReport(t *testing.T) {
	c := Config{N: 3, Duration: 10 * time.Second, FPS: 30, Phase: "spread", Label: "whipcast"}
	t0 := time.Unix(1000, 0)
	rs := []streamResult{
		{name: "a", connected: true, post: t0, connect: 100 * time.Millisecond, sent: 10 * time.Second, done: t0.Add(11 * time.Second),
			hls: &readerResult{First: 2 * time.Second, Delays: []time.Duration{300 * time.Millisecond}, Fetches: 50, Bytes: 1000}},
		{name: "b", connected: true, post: t0.Add(time.Second), connect: 300 * time.Millisecond, sent: 10 * time.Second, done: t0.Add(12 * time.Second),
			hls: &readerResult{First: 2200 * time.Millisecond, Delays: []time.Duration{500 * time.Millisecond}, Fetches: 40, Errors: 1, Err: "GET x: 404"}},
		{name: "c", err: "whipclient: POST: 503 Service Unavailable: too many publishers"},
	}
	rs[0].stats.VideoFrames, rs[1].stats.VideoFrames = 300, 297
	rs[0].stats.Lost, rs[1].stats.Lost = 2, 5
	rs[1].stats.MaxFractionLost = 0.02
	rs[0].stats.Late, rs[0].stats.MaxLate = 3, 40*time.Millisecond
	r := summarizeRun(c, rs)
	if r.Connected != 2 || r.Lost != 7 || r.MaxFractionLost != 0.02 || r.VideoFrames != 597 || r.ExpectedFrames != 600 ||
		r.Pacing != 0.995 || r.Late != 3 || r.MaxLateMS != 40 || r.HLSFetches != 90 || r.HLSErrors != 1 {
		t.Fatalf("report %+v", r)
	}
	if r.Connect != (Summary{N: 2, P50: 100, P95: 300, Max: 300}) || r.FirstHLS.P50 != 2000 || r.FirstDASH.N != 0 {
		t.Fatalf("summaries %+v %+v %+v", r.Connect, r.FirstHLS, r.FirstDASH)
	}
	if len(r.Errors) != 2 {
		t.Fatalf("errors %q", r.Errors)
	}

	// Samples: the steady window is from the last connect (t0+1.3 s) to the
	// first stop (t0+11 s).
	var ss []sample
	for i := range 14 {
		ss = append(ss, sample{at: t0.Add(time.Duration(i) * time.Second), cpu: time.Duration(i) * 100 * time.Millisecond,
			busy: uint64(i * 50), total: uint64(i * 200)})
	}
	a, b, ok := window(ss, rs)
	if !ok || !a.at.Equal(t0.Add(2*time.Second)) || !b.at.Equal(t0.Add(11*time.Second)) {
		t.Fatalf("window %v..%v", a.at, b.at)
	}
	r.addProcess(a, b, 42, 64<<20, 48<<20)
	if r.Cores != 0.1 || r.CoresPerStream != 0.05 || r.PeakRSSStream != 32<<20 || r.MachineBusy != 0.25 || r.WindowSeconds != 9 {
		t.Fatalf("process %+v", r)
	}

	var out bytes.Buffer
	if err := r.writeJSON(&out); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("not one line: %q", line)
	}
	var back Report
	if err := json.Unmarshal([]byte(line), &back); err != nil {
		t.Fatal(err)
	}
	if back.CoresPerStream != r.CoresPerStream || back.FirstHLS != r.FirstHLS || back.Label != "whipcast" {
		t.Fatalf("round trip %+v", back)
	}

	out.Reset()
	if err := r.writeTable(&out); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	for _, want := range []string{"2 of 3 connected", "7 packets lost", "597 of 600 frames", "0.100 cores, 0.0500 per stream",
		"peak RSS 64.0 MiB (32.0 MiB per stream)", "503 Service Unavailable"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// The distribution rows are right-aligned to the same width.
	var widths []int
	for _, l := range strings.Split(table, "\n")[:6] {
		widths = append(widths, len(l))
	}
	for _, w := range widths[1:] {
		if w != widths[0] {
			t.Fatalf("rows not aligned: %v\n%s", widths, table)
		}
	}
}

// TestPublishRetrying: with -retry a publisher refused with 503 tries
// again after the answer's Retry-After, and stops at the first other
// answer; without it, a 503 is final.
func TestPublishRetrying(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retry   time.Duration
		answers []int // the server's answers in turn; the last repeats
		posts   int
		code    int
	}{
		{"no retry", 0, []int{503}, 1, 503},
		{"503 then 400", 30 * time.Second, []int{503, 400}, 2, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var posts atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(posts.Add(1))
				code := tc.answers[min(n, len(tc.answers))-1]
				if code == http.StatusServiceUnavailable {
					w.Header().Set("Retry-After", "1")
				}
				http.Error(w, "overloaded: test", code)
			}))
			defer srv.Close()
			c := Config{WHIP: srv.URL + "/whip/{name}", Video: "../../testdata/av.h264", Audio: "../../testdata/av.ogg",
				FPS: 30, Duration: time.Second, ConnectTimeout: 10 * time.Second, Retry: tc.retry}
			var res streamResult
			_, err := publishRetrying(context.Background(), c, "b0", 0, srv.Client(), &res)
			var se *wish.StatusError
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("err %v, want the %d", err, tc.code)
			}
			if int(posts.Load()) != tc.posts || res.refusals != 1 {
				t.Errorf("%d POSTs, %d refusals; want %d and 1", posts.Load(), res.refusals, tc.posts)
			}
			if tc.code == 503 && se.RetryAfter != time.Second {
				t.Errorf("Retry-After read as %v", se.RetryAfter)
			}
		})
	}
}
