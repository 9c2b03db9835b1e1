package admission

import (
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// schedLatencies is the runtime's histogram of how long goroutines were
// runnable before they ran: it grows when the process wants more CPU than
// it gets, from its own load or from other processes, and the UDP read
// loop is one of the goroutines that waits. Once that wait nears what the
// socket buffer holds (4 MiB is ~130 ms of 100 streams at 2.5 Mb/s), the
// kernel drops packets on every stream at once.
const schedLatencies = "/sched/latencies:seconds"

// lagQuantile is the share of wake-ups whose wait Load.Lag bounds.
const lagQuantile = 0.99

// lagMinSamples is the fewest scheduler observations in a window for Lag
// to be more than 0: in a nearly idle process the 99th percentile of a few
// dozen wake-ups is one page fault or one GC, not a CPU shortage, and it
// must not refuse the first publisher. One stream alone wakes the read loop
// a few hundred times a second.
const lagMinSamples = 1000

// ProcessMeter measures this process: CPU time from getrusage (user and
// system, so cgo work such as the AAC encoder counts, which the Go
// runtime's own CPU estimates miss) and the scheduler's latency histogram.
// It keeps the samples of one window; it is not safe for concurrent use
// (the Controller's goroutine is its only caller).
type ProcessMeter struct {
	window  time.Duration
	cores   float64
	cpuTime func() time.Duration // process CPU time so far
	sched   func() (counts []uint64, bounds []float64)
	machine func() (machineTimes, bool) // the machine's CPU time so far
	samples []meterSample               // oldest first, spanning at most window
}

type meterSample struct {
	at      time.Time
	cpu     time.Duration
	counts  []uint64
	machine machineTimes
	mOK     bool
}

// NewProcessMeter measures this process over window.
func NewProcessMeter(window time.Duration) *ProcessMeter {
	ms := []metrics.Sample{{Name: schedLatencies}}
	return &ProcessMeter{
		window:  window,
		cores:   usableCores(),
		cpuTime: processCPU,
		machine: machineCPU,
		sched: func() ([]uint64, []float64) {
			metrics.Read(ms)
			if ms[0].Value.Kind() != metrics.KindFloat64Histogram {
				return nil, nil
			}
			h := ms[0].Value.Float64Histogram()
			return h.Counts, h.Buckets
		},
	}
}

// Measure implements Meter.
func (m *ProcessMeter) Measure(now time.Time) Load {
	counts, bounds := m.sched()
	cur := meterSample{at: now, cpu: m.cpuTime(), counts: append([]uint64(nil), counts...)}
	if m.machine != nil {
		cur.machine, cur.mOK = m.machine()
	}
	// Keep the newest sample at least window old as the base.
	for len(m.samples) > 1 && now.Sub(m.samples[1].at) >= m.window {
		m.samples = m.samples[1:]
	}
	m.samples = append(m.samples, cur)
	base := m.samples[0]
	l := Load{Cores: m.cores}
	if wall := now.Sub(base.at); wall > 0 && m.cores > 0 {
		l.CPU = (cur.cpu - base.cpu).Seconds() / wall.Seconds() / m.cores
	}
	l.Lag = quantile(base.counts, cur.counts, bounds, lagQuantile, lagMinSamples)
	if share, ok := machineShare(base, cur); ok {
		l.Machine, l.MachineCores = share, float64(cur.machine.cores)
		// What other processes took: the least of any interval in the
		// window, so a burst of someone else's work (a build step, the
		// clients' own start) refuses nobody, and work that lasts does.
		l.Others = math.Inf(1)
		for i := 1; i < len(m.samples); i++ {
			a, b := m.samples[i-1], m.samples[i]
			share, ok := machineShare(a, b)
			wall := b.at.Sub(a.at).Seconds()
			if !ok || wall <= 0 {
				continue
			}
			own := (b.cpu - a.cpu).Seconds() / wall
			l.Others = min(l.Others, max(share*float64(b.machine.cores)-own, 0))
		}
		if math.IsInf(l.Others, 1) {
			l.Others = 0
		}
	}
	return l
}

// machineShare is the machine's busy share of its CPU time between two
// samples.
func machineShare(a, b meterSample) (float64, bool) {
	if !a.mOK || !b.mOK || b.machine.total <= a.machine.total || b.machine.busy < a.machine.busy {
		return 0, false
	}
	return float64(b.machine.busy-a.machine.busy) / float64(b.machine.total-a.machine.total), true
}

// quantile is the q-th quantile of the observations between two snapshots
// of a runtime histogram (bounds[i], bounds[i+1] delimit counts[i]), as
// the upper bound of its bucket; 0 with fewer than minN observations.
func quantile(before, after []uint64, bounds []float64, q float64, minN uint64) time.Duration {
	var total uint64
	for i := range after {
		total += after[i] - at(before, i)
	}
	if total == 0 || total < minN || len(bounds) != len(after)+1 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var n uint64
	for i := range after {
		n += after[i] - at(before, i)
		if n >= want {
			b := bounds[i+1]
			if math.IsInf(b, 1) {
				b = bounds[i]
			}
			return time.Duration(b * float64(time.Second))
		}
	}
	return 0
}

func at(s []uint64, i int) uint64 {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// usableCores is GOMAXPROCS, or the cgroup CPU quota when it is smaller
// (Go rounds a fractional quota up: 1.5 cores give GOMAXPROCS 2).
func usableCores() float64 {
	n := float64(runtime.GOMAXPROCS(0))
	if q, ok := cgroupQuota(); ok && q < n {
		return q
	}
	return n
}

// cgroupQuota reads the container's CPU limit: cgroup v2 cpu.max, or v1
// cpu.cfs_quota_us / cpu.cfs_period_us, as a number of cores.
func cgroupQuota() (float64, bool) {
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		return parseQuota(strings.Fields(string(b)))
	}
	q, err1 := os.ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	p, err2 := os.ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return parseQuota([]string{strings.TrimSpace(string(q)), strings.TrimSpace(string(p))})
}

// parseQuota turns "quota period" ("max" or -1: no limit) into cores.
func parseQuota(f []string) (float64, bool) {
	if len(f) != 2 {
		return 0, false
	}
	q, err1 := strconv.ParseFloat(f[0], 64)
	p, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false // "max", -1, or garbage: no quota
	}
	return q / p, true
}
