// Package admission decides whether the gateway takes on one more
// publisher. It refuses, with a reason in words, when the configured number
// of publishers is reached (limits.max_publishers) or when the process is
// already near what the machine gives it: its CPU over the last few seconds
// against the cores it may use (limits.max_cpu), that CPU plus what the
// publishers admitted since the measurement will cost (projection.go), or
// the Go scheduler's lag, how long runnable goroutines such as the UDP read
// loop wait for a CPU (limits.max_lag). Refusing the next publisher is how
// overload degrades: the streams already live keep every packet.
//
// One goroutine (Start, Close) samples the load; Admit only reads the last
// sample, so a refusal costs nothing.
package admission

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/ingest"
)

// Reasons of a refusal: the label of whipcast_publish_refused_total.
const (
	ReasonMaxPublishers = "max_publishers"
	ReasonCPU           = "cpu"
	// ReasonCPUProjected: the measured CPU plus the estimated cost of the
	// publishers it does not contain yet reaches limits.max_cpu.
	ReasonCPUProjected = "cpu_projected"
	// ReasonMachineCPU: the machine's CPU, every process's, measured or
	// with the unmeasured publishers projected, reaches
	// limits.max_machine_cpu.
	ReasonMachineCPU = "machine_cpu"
	ReasonLag        = "lag"
)

// Reasons lists every reason, in the order the checks run.
var Reasons = []string{ReasonMaxPublishers, ReasonCPU, ReasonCPUProjected, ReasonMachineCPU, ReasonLag}

// Reasons of a WHEP viewer's refusal: the label of
// whipcast_play_refused_total.
const (
	ReasonMaxViewersPerStream = "max_viewers_per_stream"
	ReasonMaxViewers          = "max_viewers"
)

// ViewerReasons lists every reason of a viewer's refusal, in check order.
var ViewerReasons = []string{ReasonMaxViewersPerStream, ReasonMaxViewers}

// Settings configures a Controller. The zero value of each field means its
// default, except the three limits, whose zero turns the check off.
type Settings struct {
	// MaxPublishers is the most publishers at once. 0: no limit.
	MaxPublishers int
	// MaxViewersPerStream is the most WHEP viewers of one stream at once.
	// 0: no limit.
	MaxViewersPerStream int
	// MaxViewers is the most WHEP viewers at once, of all streams. 0: no
	// limit.
	MaxViewers int
	// MaxCPU is the fraction (0..1] of the usable cores at or above which
	// new publishers are refused, measured or projected (projection.go).
	// 0: off.
	MaxCPU float64
	// PublisherCost is the cores one publisher is taken to cost until at
	// least minMeasured publishers have been measured for a whole window
	// (then their measured mean is used). Default 0.03: the default config
	// (Opus→AAC, HLS + DASH players) at 720p 2.5 Mb/s, docs/BENCHMARKS.md.
	PublisherCost float64
	// Publishers, when set, says how many publishers count now (the
	// gateway gives ingest's count); the sampler reads it, so a departure
	// frees its share at the next sample without waiting for an Admit.
	// Default: the count last passed to Admit.
	Publishers func() int
	// MaxMachineCPU is the fraction (0..1] of the machine's cores at or
	// above which new publishers are refused: what other processes use
	// (Load.Others) plus this process's CPU, measured or projected, once
	// the gateway carries MachineMinPublishers. 0: off.
	MaxMachineCPU float64
	// MachineMinPublishers is how many publishers the gateway must carry
	// before MaxMachineCPU refuses: below it, one more costs little beside
	// what the machine's other work takes, and a developer's machine busy
	// with a build or a browser still takes a publish. Default 8.
	MachineMinPublishers int
	// MaxLag is the scheduler lag (99th percentile over Window) at or above
	// which new publishers are refused. 0: off.
	MaxLag time.Duration
	// Interval is the time between load samples. Default 1s.
	Interval time.Duration
	// Window is how far back the load is measured. Default 5s: long enough
	// that one GC cycle or one keyframe burst does not refuse anyone, short
	// enough to see an overload before the UDP buffer overflows for good.
	Window time.Duration
	// RetryAfter is what a refusal tells the publisher (Retry-After);
	// a load check's refusal adds up to as much again at random, so the
	// publishers refused together do not all return together. Default
	// Window.
	RetryAfter time.Duration
	// Meter measures the load. Default: this process (NewProcessMeter).
	Meter Meter
	// Logger gets one warning when refusals start (and at most one a
	// minute while they go on) and a note when publishers are admitted
	// again. Default slog.Default().
	Logger *slog.Logger
}

// Load is one measurement of the process.
type Load struct {
	// CPU is the process's CPU time over the window divided by the wall
	// time and Cores: 1 means every usable core was busy.
	CPU float64
	// Cores is how many cores the process may use.
	Cores float64
	// Lag is the 99th percentile of the time goroutines waited, runnable,
	// for a CPU, over the window.
	Lag time.Duration
	// Machine is the share of the machine's CPU time that was busy over
	// the window, every process's on every core (/proc/stat; the host's in
	// a container). 0 where it cannot be read (not Linux).
	Machine float64
	// MachineCores is how many cores Machine is a share of (0: unknown,
	// and the machine check is off).
	MachineCores float64
	// Others is the cores other processes used: the machine's busy cores
	// less this process's, the least of any sample interval in the window.
	Others float64
}

// machineWith is the machine's load, as a share of its cores, when this
// process uses cpu of its Cores and the others what they used.
func (l *Load) machineWith(cpu float64) float64 {
	if l.MachineCores <= 0 {
		return 0
	}
	return (l.Others + cpu*l.Cores) / l.MachineCores
}

// Meter measures the load. Measure is called once per Settings.Interval,
// from the Controller's goroutine only.
type Meter interface {
	Measure(now time.Time) Load
}

// Controller is the admission decision. It implements ingest.Admission.
type Controller struct {
	set  Settings
	log  *slog.Logger
	load atomic.Pointer[Load]

	refused     [5]atomic.Uint64 // by reason, in Reasons order
	viewRefused [2]atomic.Uint64 // by reason, in ViewerReasons order

	// The refusal burst (log state), guarded by mu.
	mu        sync.Mutex
	inBurst   bool
	burstN    uint64 // refusals in this burst
	sinceWarn uint64 // refusals since the last warning
	lastWarn  time.Time

	proj projection // guarded by its own mutex

	startOnce, closeOnce sync.Once
	stop, done           chan struct{}
}

var (
	_ ingest.Admission       = (*Controller)(nil)
	_ ingest.ViewerAdmission = (*Controller)(nil)
)

// New makes a Controller; Start begins sampling.
func New(s Settings) *Controller {
	if s.Interval <= 0 {
		s.Interval = time.Second
	}
	if s.Window <= 0 {
		s.Window = 5 * time.Second
	}
	if s.RetryAfter <= 0 {
		s.RetryAfter = s.Window
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.PublisherCost <= 0 {
		s.PublisherCost = DefaultPublisherCost
	}
	if s.MachineMinPublishers <= 0 {
		s.MachineMinPublishers = minMeasured
	}
	if s.Meter == nil && (s.MaxCPU > 0 || s.MaxLag > 0 || s.MaxMachineCPU > 0) {
		s.Meter = NewProcessMeter(s.Window)
	}
	c := &Controller{set: s, log: s.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	c.load.Store(&Load{Cores: usableCores()})
	c.proj.init(s, time.Now)
	return c
}

// Start runs the sampling goroutine, when a load check is on, until Close.
func (c *Controller) Start() {
	c.startOnce.Do(func() {
		if c.set.Meter == nil {
			close(c.done)
			return
		}
		c.sample(time.Now())
		go c.run()
	})
}

// Close stops the sampling goroutine and waits for it. Safe to call more
// than once, and without Start.
func (c *Controller) Close() {
	c.startOnce.Do(func() { close(c.done) }) // never started: nothing runs
	c.closeOnce.Do(func() { close(c.stop) })
	<-c.done
}

func (c *Controller) run() {
	defer close(c.done)
	t := time.NewTicker(c.set.Interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.sample(now)
		}
	}
}

func (c *Controller) sample(now time.Time) {
	l := c.set.Meter.Measure(now)
	publishers := -1
	if c.set.Publishers != nil {
		publishers = c.set.Publishers()
	}
	c.proj.mu.Lock()
	defer c.proj.mu.Unlock()
	c.proj.measured(now, l, publishers)
	c.load.Store(&l)
}

// Admit refuses a new publisher (making publishers in all) with a
// *ingest.RefusedError when a limit is reached.
func (c *Controller) Admit(publishers int) error {
	c.proj.mu.Lock()
	reason, detail := c.check(publishers)
	c.proj.admitted(publishers, reason == "")
	c.proj.mu.Unlock()
	if reason == "" {
		c.admitted()
		return nil
	}
	c.refuse(reason, detail)
	return &ingest.RefusedError{Reason: reason, Detail: detail, RetryAfter: c.retryAfter(reason)}
}

// retryAfter is what a refusal for reason tells the publisher: RetryAfter,
// and for a load check up to as much again, in whole seconds at random.
// Publishers refused in one burst would otherwise all come back in the
// same second, and a wave of handshakes on a machine that already carries
// its streams is what loses their packets: 45 retrying together on a
// shared 2-core machine lost 38k packets (docs/BENCHMARKS.md).
func (c *Controller) retryAfter(reason string) time.Duration {
	d := c.set.RetryAfter
	if reason == ReasonMaxPublishers || d < time.Second {
		return d
	}
	return d + time.Duration(rand.IntN(int(d/time.Second)+1))*time.Second
}

// AdmitViewer refuses a new WHEP viewer (making streamViewers of its
// stream and viewers in all) with a *ingest.RefusedError when a viewer
// limit is reached. The load checks do not apply: a viewer costs a
// fraction of a publisher, and what viewers cost shows in the load that
// refuses the next publisher. Refusals are counted, not logged (the
// publisher refusals' log says when the gateway is overloaded).
func (c *Controller) AdmitViewer(streamViewers, viewers int) error {
	reason, detail := c.checkViewer(streamViewers, viewers)
	if reason == "" {
		return nil
	}
	for i, r := range ViewerReasons {
		if r == reason {
			c.viewRefused[i].Add(1)
		}
	}
	return &ingest.RefusedError{Reason: reason, Detail: detail, RetryAfter: c.set.RetryAfter}
}

func (c *Controller) checkViewer(streamViewers, viewers int) (reason, detail string) {
	s := c.set
	switch {
	case s.MaxViewersPerStream > 0 && streamViewers > s.MaxViewersPerStream:
		return ReasonMaxViewersPerStream, fmt.Sprintf("limits.max_viewers_per_stream (%d) reached", s.MaxViewersPerStream)
	case s.MaxViewers > 0 && viewers > s.MaxViewers:
		return ReasonMaxViewers, fmt.Sprintf("limits.max_viewers (%d) reached", s.MaxViewers)
	}
	return "", ""
}

// check returns the first limit that publishers and the last load reach;
// c.proj.mu is held.
func (c *Controller) check(publishers int) (reason, detail string) {
	s, l := c.set, c.load.Load()
	p := c.proj.project(publishers-1, l)
	switch {
	case s.MaxPublishers > 0 && publishers > s.MaxPublishers:
		return ReasonMaxPublishers, fmt.Sprintf("limits.max_publishers (%d) reached", s.MaxPublishers)
	case s.MaxCPU > 0 && l.CPU >= s.MaxCPU:
		return ReasonCPU, fmt.Sprintf("cpu %s of %s cores >= limits.max_cpu %s", percent(l.CPU), strconv.FormatFloat(l.Cores, 'f', -1, 64), percent(s.MaxCPU))
	case s.MaxCPU > 0 && p.unmeasured > 0 && p.cpu >= s.MaxCPU:
		return ReasonCPUProjected, fmt.Sprintf("cpu %s of %s cores + %s (~%s cores each, %s) = %s >= limits.max_cpu %s",
			percent(l.CPU), strconv.FormatFloat(l.Cores, 'f', -1, 64), p.missing(),
			strconv.FormatFloat(p.cost, 'g', 2, 64), p.costFrom(), percent(p.cpu), percent(s.MaxCPU))
	case s.MaxMachineCPU > 0 && publishers-1 >= s.MachineMinPublishers && l.MachineCores > 0 && l.machineWith(l.CPU) >= s.MaxMachineCPU:
		return ReasonMachineCPU, fmt.Sprintf("other processes %s cores + this process %s cores = %s of the machine's %s >= limits.max_machine_cpu %s",
			cores(l.Others), cores(l.CPU*l.Cores), percent(l.machineWith(l.CPU)),
			strconv.FormatFloat(l.MachineCores, 'f', -1, 64), percent(s.MaxMachineCPU))
	case s.MaxMachineCPU > 0 && publishers-1 >= s.MachineMinPublishers && l.MachineCores > 0 && p.since > 0 && p.machine >= s.MaxMachineCPU:
		return ReasonMachineCPU, fmt.Sprintf("other processes %s cores + this process %s cores + %d %s since the measurement (~%s cores each, %s) = %s of the machine's %s >= limits.max_machine_cpu %s",
			cores(l.Others), cores(l.CPU*l.Cores), p.since, plural(p.since, "publisher", "publishers"), strconv.FormatFloat(p.cost, 'g', 2, 64), p.costFrom(),
			percent(p.machine), strconv.FormatFloat(l.MachineCores, 'f', -1, 64), percent(s.MaxMachineCPU))
	case s.MaxLag > 0 && l.Lag >= s.MaxLag:
		return ReasonLag, fmt.Sprintf("scheduling lag %s >= limits.max_lag %s", l.Lag.Round(time.Millisecond), s.MaxLag)
	}
	return "", ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// cores writes a number of cores to two decimals.
func cores(c float64) string { return strconv.FormatFloat(c, 'f', 2, 64) }

// percent writes a fraction as a percentage, with a decimal below 10 %.
func percent(f float64) string {
	p := f * 100
	if p < 10 {
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}

// refuse counts a refusal and warns once per burst (again after a minute
// of refusals, with their count), not once per request.
func (c *Controller) refuse(reason, detail string) {
	for i, r := range Reasons {
		if r == reason {
			c.refused[i].Add(1)
		}
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.burstN++
	c.sinceWarn++
	if c.inBurst && now.Sub(c.lastWarn) < time.Minute {
		return
	}
	if c.inBurst {
		c.log.Warn("admission: still refusing new publishers", "reason", reason, "detail", detail, "refused", c.sinceWarn)
	} else {
		c.log.Warn("admission: refusing new publishers (503)", "reason", reason, "detail", detail)
	}
	c.inBurst, c.lastWarn, c.sinceWarn = true, now, 0
}

// admitted ends a refusal burst.
func (c *Controller) admitted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.inBurst {
		return
	}
	c.log.Info("admission: admitting new publishers again", "refused", c.burstN)
	c.inBurst, c.burstN, c.sinceWarn = false, 0, 0
}

// Refused returns the refusals since start by reason (every reason present).
func (c *Controller) Refused() map[string]uint64 {
	out := make(map[string]uint64, len(Reasons))
	for i, r := range Reasons {
		out[r] = c.refused[i].Load()
	}
	return out
}

// ViewersRefused returns the viewer refusals since start by reason (every
// reason present).
func (c *Controller) ViewersRefused() map[string]uint64 {
	out := make(map[string]uint64, len(ViewerReasons))
	for i, r := range ViewerReasons {
		out[r] = c.viewRefused[i].Load()
	}
	return out
}

// State is the admission state as GET /v1/limits shows it.
type State struct {
	// Admitting is whether a new publisher would be admitted now.
	Admitting bool `json:"admitting"`
	// Reason and Detail name the limit that refuses, when not Admitting.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Publishers counts live, negotiating and held publishers;
	// MaxPublishers is limits.max_publishers (0: none).
	Publishers    int `json:"publishers"`
	MaxPublishers int `json:"max_publishers"`
	// CPU is the process's share of Cores over the window; MaxCPU is
	// limits.max_cpu (0: off).
	CPU    float64 `json:"cpu"`
	Cores  float64 `json:"cores"`
	MaxCPU float64 `json:"max_cpu"`
	// CPUProjected is CPU plus the estimated cost of what the measurement
	// does not contain yet: PublishersUnmeasured publishers were admitted
	// within the last window or since it was taken, and
	// PublishersUnmeasuredShare is how many publishers' worth of them the
	// measured window misses (one admitted halfway through it counts 0.5),
	// at PublisherCost cores each: measured when PublisherCostMeasured,
	// else limits.publisher_cost. MaxCPU refuses at either figure.
	CPUProjected              float64 `json:"cpu_projected"`
	PublishersUnmeasured      int     `json:"publishers_unmeasured"`
	PublishersUnmeasuredShare float64 `json:"publishers_unmeasured_share"`
	PublisherCost             float64 `json:"publisher_cost"`
	PublisherCostMeasured     bool    `json:"publisher_cost_measured"`
	// Machine is the machine's busy share of its MachineCores over the
	// window, every process's (0: unknown); MachineOthers is the cores
	// other processes used (the least of any second of the window).
	// MachineProjected is MachineOthers plus this process's projected CPU
	// (CPUProjected × Cores) as a share of MachineCores. MaxMachineCPU is
	// limits.max_machine_cpu (0: off), which refuses at it, or at the
	// same with the measured CPU, once MachineMinPublishers are carried.
	Machine              float64 `json:"machine_cpu"`
	MachineCores         float64 `json:"machine_cores"`
	MachineOthers        float64 `json:"machine_others_cores"`
	MachineProjected     float64 `json:"machine_cpu_projected"`
	MaxMachineCPU        float64 `json:"max_machine_cpu"`
	MachineMinPublishers int     `json:"machine_min_publishers"`
	// LagSeconds is the scheduler lag (p99 over the window);
	// MaxLagSeconds is limits.max_lag (0: off).
	LagSeconds    float64 `json:"lag_seconds"`
	MaxLagSeconds float64 `json:"max_lag_seconds"`
	// Refused counts the refusals since start by reason.
	Refused map[string]uint64 `json:"refused"`
	// Viewers counts the WHEP playbacks (live and negotiating);
	// MaxViewers and MaxViewersPerStream are limits.max_viewers and
	// limits.max_viewers_per_stream (0: none).
	Viewers             int `json:"viewers"`
	MaxViewers          int `json:"max_viewers"`
	MaxViewersPerStream int `json:"max_viewers_per_stream"`
	// ViewersRefused counts the viewer refusals since start by reason.
	ViewersRefused map[string]uint64 `json:"viewers_refused"`
	// RateLimited counts the requests refused with 429 by limits.rate
	// since start, by route (whip, whep, api); RateClients is how many
	// client IPs have a bucket. Filled by the gateway; nil and 0 when
	// rate limiting is off.
	RateLimited map[string]uint64 `json:"rate_limited,omitempty"`
	RateClients int               `json:"rate_clients"`
	// Timeouts counts the sessions ended for a timeout since start:
	// publish_ice, publish_idle, publish_media, play_ice. Filled by the
	// gateway.
	Timeouts map[string]uint64 `json:"timeouts,omitempty"`
}

// State reports the limits, the last load and whether one more publisher
// than publishers would be admitted; viewers is how many WHEP viewers
// there are.
func (c *Controller) State(publishers, viewers int) State {
	c.proj.mu.Lock()
	l := c.load.Load()
	reason, detail := c.check(publishers + 1)
	p := c.proj.project(publishers, l)
	c.proj.mu.Unlock()
	return State{
		Admitting: reason == "", Reason: reason, Detail: detail,
		Publishers: publishers, MaxPublishers: c.set.MaxPublishers,
		CPU: l.CPU, Cores: l.Cores, MaxCPU: c.set.MaxCPU,
		CPUProjected: p.cpu, PublishersUnmeasured: p.unmeasured, PublishersUnmeasuredShare: p.share, PublisherCost: p.cost, PublisherCostMeasured: p.fromMeasure,
		Machine: l.Machine, MachineCores: l.MachineCores, MachineOthers: l.Others, MachineProjected: p.machine,
		MaxMachineCPU: c.set.MaxMachineCPU, MachineMinPublishers: c.set.MachineMinPublishers,
		LagSeconds: l.Lag.Seconds(), MaxLagSeconds: c.set.MaxLag.Seconds(),
		Refused: c.Refused(),
		Viewers: viewers, MaxViewers: c.set.MaxViewers, MaxViewersPerStream: c.set.MaxViewersPerStream,
		ViewersRefused: c.ViewersRefused(),
	}
}
