package admission

import (
	"log/slog"
	"math"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	stat := "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 7 0\ncpu1 50 3 25 400 20 2 1 0 0 0\nintr 12345\nctxt 99\n"
	m, ok := parseProcStat([]byte(stat))
	// total: user..steal = 100+5+50+800+40+3+2+0 = 1000; idle+iowait 840.
	if !ok || m.total != 1000 || m.busy != 160 || m.cores != 2 {
		t.Fatalf("parsed %+v %v", m, ok)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu  1 2 x 4 5\ncpu0 1 2 3 4 5\n", "cpu 1 2\ncpu0 1 2 3 4\n", "cpu  1 2 3 4 5\n"} {
		if m, ok := parseProcStat([]byte(bad)); ok {
			t.Errorf("%q parsed as %+v", bad, m)
		}
	}
	if runtime.GOOS == "linux" {
		m, ok := machineCPU()
		if b, err := os.ReadFile("/proc/stat"); err == nil && (!ok || m.cores < 1 || m.total == 0) {
			t.Fatalf("this machine's /proc/stat (%d bytes) read as %+v %v", len(b), m, ok)
		}
	}
}

// TestProcessMeterMachine: the machine's share is its busy ticks over its
// total ticks in the window; the others' cores are the machine's busy cores
// less this process's, the least of any second in the window, so a short
// burst of someone else's work does not count.
func TestProcessMeterMachine(t *testing.T) {
	var mt machineTimes
	var cpu time.Duration
	mt.cores = 2
	m := &ProcessMeter{window: 5 * time.Second, cores: 2,
		cpuTime: func() time.Duration { return cpu },
		sched:   func() ([]uint64, []float64) { return nil, nil },
		machine: func() (machineTimes, bool) { return mt, true }}
	t0 := time.Unix(1000, 0)
	m.Measure(t0)
	// 2 cores × 100 ticks a second, 150 busy: 1.5 cores, 0.5 of them ours.
	for i := 1; i <= 10; i++ {
		mt.total += 200
		mt.busy += 150
		cpu += 500 * time.Millisecond
		l := m.Measure(t0.Add(time.Duration(i) * time.Second))
		if math.Abs(l.Machine-0.75) > 1e-9 || l.MachineCores != 2 || math.Abs(l.Others-1) > 1e-9 || math.Abs(l.CPU-0.25) > 1e-9 {
			t.Fatalf("second %d: %+v", i, l)
		}
	}
	// One second of the machine full (someone else's burst): the window's
	// share shows it, the others' cores do not.
	mt.total += 200
	mt.busy += 200
	cpu += 500 * time.Millisecond
	l := m.Measure(t0.Add(11 * time.Second))
	if math.Abs(l.Machine-0.8) > 1e-9 || math.Abs(l.Others-1) > 1e-9 {
		t.Fatalf("after a one-second burst: %+v", l)
	}
	// Lasting work of others: every second at 1.9 busy cores.
	for i := 12; i <= 17; i++ {
		mt.total += 200
		mt.busy += 190
		cpu += 500 * time.Millisecond
		l = m.Measure(t0.Add(time.Duration(i) * time.Second))
	}
	if math.Abs(l.Others-1.4) > 1e-9 {
		t.Fatalf("lasting load: others %v cores, want 1.4", l.Others)
	}
	m.machine = func() (machineTimes, bool) { return machineTimes{}, false }
	if l := m.Measure(t0.Add(18 * time.Second)); l.Machine != 0 || l.MachineCores != 0 {
		t.Fatalf("unreadable /proc/stat measured %+v", l)
	}
}

// TestMachineCPU: limits.max_machine_cpu refuses once the gateway carries
// MachineMinPublishers and the machine, measured or with the unmeasured
// publishers projected, is that busy, even while the process's own share
// is low: the CPU went to other processes.
func TestMachineCPU(t *testing.T) {
	publishers := 0
	c, m, clk := projectedController(&publishers)
	c.set.MaxMachineCPU, c.set.MachineMinPublishers = 0.9, 8
	c.proj.on = true

	// The machine is full with someone else's work, the gateway at 20 %:
	// a developer's machine with 3 publishers still takes a fourth.
	m.l = Load{CPU: 0.2, Cores: 2, Machine: 0.97, MachineCores: 2, Others: 1.54}
	publishers = 3
	clk.t = clk.t.Add(10 * time.Second)
	c.sample(clk.t)
	if err := c.Admit(4); err != nil {
		t.Fatalf("4th publisher on a busy machine: %v", err)
	}
	// With 8 carried, the busy machine refuses, and says whose CPU it is.
	publishers = 8
	clk.t = clk.t.Add(10 * time.Second)
	c.sample(clk.t)
	re := refusal(t, c.Admit(9))
	if want := "other processes 1.54 cores + this process 0.40 cores = 97% of the machine's 2 >= limits.max_machine_cpu 90%"; re.Reason != ReasonMachineCPU || re.Detail != want {
		t.Fatalf("refusal %q %q, want %q", re.Reason, re.Detail, want)
	}
	// Others at 1.2 cores, the gateway at 0.4 (80 %): the publishers
	// admitted since the sample are projected onto the machine at the 8
	// measured ones' cost (0.4 cores / 8 = 0.05, 2.5 % of 2 cores): four
	// more fit, a fifth finds 90 %.
	m.l.Machine, m.l.Others = 0.8, 1.2
	clk.t = clk.t.Add(10 * time.Second)
	c.sample(clk.t)
	clk.t = clk.t.Add(100 * time.Millisecond)
	n, err := admitUntilRefused(t, c, 8)
	re = refusal(t, err)
	if n != 4 || re.Reason != ReasonMachineCPU ||
		re.Detail != "other processes 1.20 cores + this process 0.40 cores + 4 publishers since the measurement (~0.05 cores each, measured) = 90% of the machine's 2 >= limits.max_machine_cpu 90%" {
		t.Fatalf("admitted %d, then %q %q", n, re.Reason, re.Detail)
	}
	st := c.State(12, 0)
	if st.Admitting || st.Machine != 0.8 || st.MachineCores != 2 || math.Abs(st.MachineProjected-0.9) > 1e-9 ||
		st.MaxMachineCPU != 0.9 || st.MachineMinPublishers != 8 || st.MachineOthers != 1.2 || st.Refused[ReasonMachineCPU] != 2 {
		t.Fatalf("state %+v", st)
	}
	// At the next sample those four are taken to be in the measurement
	// (the process check still projects the part of them it misses): the
	// machine, still measured at 80 %, takes more again, five at the
	// measured cost now 0.045 (0.4 cores over 8 + 4 × 1/5 present).
	publishers = 12
	clk.t = clk.t.Add(time.Second)
	c.sample(clk.t)
	clk.t = clk.t.Add(100 * time.Millisecond)
	if n, err := admitUntilRefused(t, c, 12); n != 5 || refusal(t, err).Reason != ReasonMachineCPU {
		t.Fatalf("after the next sample: admitted %d, then %v", n, err)
	}
	// Off: the same machine refuses nobody.
	off := New(Settings{Meter: &fakeMeter{l: Load{CPU: 0.2, Cores: 2, Machine: 1, MachineCores: 2, Others: 1.6}}, Logger: slog.New(slog.DiscardHandler)})
	off.Start()
	defer off.Close()
	if err := off.Admit(50); err != nil {
		t.Fatalf("max_machine_cpu 0: %v", err)
	}
}
