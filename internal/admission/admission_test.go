package admission

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/ingest"
)

// fakeMeter returns whatever load the test sets.
type fakeMeter struct{ l Load }

func (f *fakeMeter) Measure(time.Time) Load { return f.l }

func refusal(t *testing.T, err error) *ingest.RefusedError {
	t.Helper()
	var re *ingest.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, ingest.ErrOverloaded) {
		t.Fatalf("want a refusal, got %v", err)
	}
	return re
}

func TestMaxPublishers(t *testing.T) {
	c := New(Settings{MaxPublishers: 2, Meter: &fakeMeter{}, Logger: slog.New(slog.DiscardHandler)})
	for n := 1; n <= 2; n++ {
		if err := c.Admit(n); err != nil {
			t.Fatalf("publisher %d: %v", n, err)
		}
	}
	re := refusal(t, c.Admit(3))
	if re.Reason != ReasonMaxPublishers || re.Detail != "limits.max_publishers (2) reached" || re.RetryAfter != 5*time.Second {
		t.Fatalf("refusal %+v", re)
	}
	if st := c.State(2, 0); st.Admitting || st.Reason != ReasonMaxPublishers || st.Refused[ReasonMaxPublishers] != 1 || st.Refused[ReasonCPU] != 0 {
		t.Fatalf("state at the limit %+v", st)
	}
	if st := c.State(1, 0); !st.Admitting || st.Publishers != 1 {
		t.Fatalf("state below the limit %+v", st)
	}
	unlimited := New(Settings{Meter: &fakeMeter{}})
	if err := unlimited.Admit(100000); err != nil {
		t.Fatalf("max_publishers 0: %v", err)
	}
}

func TestLoadChecks(t *testing.T) {
	m := &fakeMeter{}
	c := New(Settings{MaxCPU: 0.9, MaxLag: 50 * time.Millisecond, Meter: m, Logger: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		load   Load
		reason string
		detail string
	}{
		{Load{CPU: 0.5, Cores: 2, Lag: time.Millisecond}, "", ""},
		{Load{CPU: 0.93, Cores: 2, Lag: time.Millisecond}, ReasonCPU, "cpu 93% of 2 cores >= limits.max_cpu 90%"},
		{Load{CPU: 0.9, Cores: 1.5}, ReasonCPU, "cpu 90% of 1.5 cores >= limits.max_cpu 90%"},
		{Load{CPU: 0.2, Cores: 2, Lag: 73 * time.Millisecond}, ReasonLag, "scheduling lag 73ms >= limits.max_lag 50ms"},
		{Load{CPU: 0.95, Cores: 2, Lag: time.Second}, ReasonCPU, "cpu 95% of 2 cores >= limits.max_cpu 90%"},
		{Load{CPU: 0.89, Cores: 2, Lag: 49 * time.Millisecond}, "", ""},
	} {
		m.l = tc.load
		c.sample(time.Now())
		err := c.Admit(1)
		if tc.reason == "" {
			if err != nil {
				t.Errorf("%+v: refused: %v", tc.load, err)
			}
			continue
		}
		if re := refusal(t, err); re.Reason != tc.reason || re.Detail != tc.detail {
			t.Errorf("%+v: %q %q, want %q %q", tc.load, re.Reason, re.Detail, tc.reason, tc.detail)
		}
	}
	if got := c.Refused(); got[ReasonCPU] != 3 || got[ReasonLag] != 1 || got[ReasonMaxPublishers] != 0 {
		t.Fatalf("refused %v", got)
	}
	// Checks set to 0 are off, however high the load.
	m.l = Load{CPU: 1, Cores: 2, Lag: time.Second}
	off := New(Settings{Meter: m})
	off.sample(time.Now())
	if err := off.Admit(1); err != nil {
		t.Fatalf("checks off: %v", err)
	}
	// Small limits are written so that they still read.
	m.l = Load{CPU: 0.004, Cores: 2}
	low := New(Settings{MaxCPU: 0.001, Meter: m, Logger: slog.New(slog.DiscardHandler)})
	low.sample(time.Now())
	if re := refusal(t, low.Admit(1)); re.Detail != "cpu 0.4% of 2 cores >= limits.max_cpu 0.1%" {
		t.Fatalf("detail %q", re.Detail)
	}
}

// TestOneWarningPerBurst: many refusals in a row warn once; an admitted
// publisher ends the burst, and the next refusal warns again.
func TestOneWarningPerBurst(t *testing.T) {
	var buf bytes.Buffer
	c := New(Settings{MaxPublishers: 1, Meter: &fakeMeter{}, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	for range 20 {
		_ = c.Admit(2)
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for one burst:\n%s", n, buf.String())
	}
	if err := c.Admit(1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "admitting new publishers again") || !strings.Contains(buf.String(), "refused=20") {
		t.Fatalf("no end of burst logged:\n%s", buf.String())
	}
	_ = c.Admit(2)
	if n := strings.Count(buf.String(), "level=WARN"); n != 2 {
		t.Fatalf("%d warnings after a second burst:\n%s", n, buf.String())
	}
}

func TestStartClose(t *testing.T) {
	m := &fakeMeter{l: Load{CPU: 0.99, Cores: 2}}
	c := New(Settings{MaxCPU: 0.9, Interval: time.Millisecond, Meter: m, Logger: slog.New(slog.DiscardHandler)})
	c.Start() // samples once before returning
	if err := c.Admit(1); err == nil {
		t.Fatal("load sampled at Start not used")
	}
	c.Close()
	c.Close()
	New(Settings{}).Close() // never started
	idle := New(Settings{MaxPublishers: 3})
	idle.Start() // no load check: no goroutine
	idle.Close()
}

func TestProcessMeterWindow(t *testing.T) {
	var cpu time.Duration
	counts := []uint64{0, 0, 0}
	bounds := []float64{0, 0.001, 0.1, math.Inf(1)}
	m := &ProcessMeter{window: 5 * time.Second, cores: 2,
		cpuTime: func() time.Duration { return cpu },
		sched:   func() ([]uint64, []float64) { return counts, bounds }}
	t0 := time.Unix(1000, 0)
	if l := m.Measure(t0); l.CPU != 0 || l.Lag != 0 || l.Cores != 2 {
		t.Fatalf("first sample %+v", l)
	}
	// 1 core busy for 10 s, scheduler waits below 1 ms: half of 2 cores.
	for i := 1; i <= 10; i++ {
		cpu += time.Second
		counts[0] += 1000
		l := m.Measure(t0.Add(time.Duration(i) * time.Second))
		if math.Abs(l.CPU-0.5) > 1e-9 || l.Lag != time.Millisecond {
			t.Fatalf("second %d: %+v", i, l)
		}
	}
	// Then both cores, and 2 % of the waits between 1 and 100 ms: the
	// window forgets the quiet seconds.
	for i := 11; i <= 16; i++ {
		cpu += 2 * time.Second
		counts[0] += 980
		counts[1] += 20
		m.Measure(t0.Add(time.Duration(i) * time.Second))
	}
	l := m.Measure(t0.Add(16 * time.Second))
	if math.Abs(l.CPU-1) > 1e-9 || l.Lag != 100*time.Millisecond {
		t.Fatalf("busy window: %+v", l)
	}
	if len(m.samples) > 7 {
		t.Fatalf("%d samples kept for a 5 s window at 1 s", len(m.samples))
	}
	// Waits past the last finite bound read as that bound.
	counts[2] += 100000
	if l := m.Measure(t0.Add(17 * time.Second)); l.Lag != 100*time.Millisecond {
		t.Fatalf("overflow bucket: %v", l.Lag)
	}
	// A nearly idle process: a few slow wake-ups are no CPU shortage.
	for i := 18; i <= 30; i++ {
		counts[1] += 10
		if l := m.Measure(t0.Add(time.Duration(i) * time.Second)); i >= 23 && l.Lag != 0 {
			t.Fatalf("second %d: lag %v from %d wake-ups a second", i, l.Lag, 10)
		}
	}
}

func TestParseQuota(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"150000 100000", 1.5, true},
		{"max 100000", 0, false},
		{"-1 100000", 0, false},
		{"x", 0, false},
	} {
		got, ok := parseQuota(strings.Fields(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %v %v", tc.in, got, ok)
		}
	}
	if c := usableCores(); c <= 0 {
		t.Fatalf("usable cores %v", c)
	}
}

func TestProcessMeterMeasuresThisProcess(t *testing.T) {
	m := NewProcessMeter(5 * time.Second)
	start := time.Now()
	m.Measure(start)
	// Busy one goroutine until the process has used some CPU time.
	x := 0
	for processCPU() == 0 || time.Since(start) < 50*time.Millisecond {
		x++
	}
	l := m.Measure(time.Now())
	if l.CPU <= 0 || l.Cores <= 0 || x == 0 {
		t.Fatalf("busy process measured %+v", l)
	}
}

// TestRetryAfterSpread: a load check's refusals tell the publishers to
// come back after the window and up to as much again, in whole seconds, so
// those refused together do not return together; max_publishers says the
// window alone.
func TestRetryAfterSpread(t *testing.T) {
	c := New(Settings{MaxPublishers: 1, MaxCPU: 0.5, Meter: &fakeMeter{l: Load{CPU: 0.9, Cores: 2}}, Logger: slog.New(slog.DiscardHandler)})
	c.sample(time.Now())
	seen := map[time.Duration]bool{}
	for range 200 {
		re := refusal(t, c.Admit(1))
		if re.Reason != ReasonCPU || re.RetryAfter < 5*time.Second || re.RetryAfter > 10*time.Second || re.RetryAfter%time.Second != 0 {
			t.Fatalf("load refusal %+v", re)
		}
		seen[re.RetryAfter] = true
	}
	if len(seen) < 4 {
		t.Fatalf("200 refusals told only %v", seen)
	}
	if re := refusal(t, c.Admit(2)); re.Reason != ReasonMaxPublishers || re.RetryAfter != 5*time.Second {
		t.Fatalf("max_publishers refusal %+v", re)
	}
}

func TestMaxViewers(t *testing.T) {
	c := New(Settings{MaxViewersPerStream: 2, MaxViewers: 3, Meter: &fakeMeter{}, Logger: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		stream, total  int
		reason, detail string
	}{
		{1, 1, "", ""},
		{2, 3, "", ""},
		{3, 3, ReasonMaxViewersPerStream, "limits.max_viewers_per_stream (2) reached"},
		{1, 4, ReasonMaxViewers, "limits.max_viewers (3) reached"},
		{3, 4, ReasonMaxViewersPerStream, "limits.max_viewers_per_stream (2) reached"},
	} {
		err := c.AdmitViewer(tc.stream, tc.total)
		if tc.reason == "" {
			if err != nil {
				t.Errorf("%d of the stream, %d in all: %v", tc.stream, tc.total, err)
			}
			continue
		}
		re := refusal(t, err)
		if re.Reason != tc.reason || re.Detail != tc.detail || re.RetryAfter != 5*time.Second {
			t.Errorf("%d of the stream, %d in all: %+v", tc.stream, tc.total, re)
		}
	}
	st := c.State(0, 3)
	if st.Viewers != 3 || st.MaxViewers != 3 || st.MaxViewersPerStream != 2 ||
		st.ViewersRefused[ReasonMaxViewersPerStream] != 2 || st.ViewersRefused[ReasonMaxViewers] != 1 {
		t.Fatalf("state %+v", st)
	}
	// Publishers are not viewers: a viewer refusal does not refuse them.
	if err := c.Admit(1); err != nil || st.Refused[ReasonMaxPublishers] != 0 {
		t.Fatalf("a publisher after viewer refusals: %v %+v", err, st.Refused)
	}
	if err := New(Settings{Meter: &fakeMeter{}}).AdmitViewer(100000, 100000); err != nil {
		t.Fatalf("no viewer limits: %v", err)
	}
}
