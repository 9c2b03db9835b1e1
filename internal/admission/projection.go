package admission

import (
	"fmt"
	"strconv"
	"sync"
	"time"
)

// DefaultPublisherCost is Settings.PublisherCost's default, in cores: what
// one 720p 2.5 Mb/s publisher costs the gateway on its default config
// (Opus→AAC, HLS and DASH players): 0.019–0.021 while all of 41–58
// streams were sending in docs/BENCHMARKS.md (their live windows filling
// included), ~0.016 per stream added between 10 and 50. Its measured cost replaces this estimate once
// minMeasured publishers have been measured.
const DefaultPublisherCost = 0.02

// PassthroughPublisherCost is the estimate for a gateway that does not
// transcode audio (audio: opus): 0.009–0.012 of a core per publisher at
// 50 streams in docs/BENCHMARKS.md, a third of the default config's.
const PassthroughPublisherCost = 0.012

// minMeasured is the fewest publishers present for a whole window before
// the window's CPU divided among them is trusted as the cost of one. With
// fewer, the process's fixed cost (the runtime, the HTTP server, idle
// players' polling) dominates: one stream alone measured 0.069 cores, 2.6×
// its share at 50.
const minMeasured = 8

// maxAdmits bounds the admission times kept (a window's worth; MaxCPU
// itself refuses long before this many).
const maxAdmits = 100000

// projection keeps the CPU check from waiting for the load to show. The
// measured CPU is an average over Settings.Window, so publishers admitted
// within the window, and those admitted since the measurement, are not (or
// not fully) in it: 100 publishers arriving in 2 s were all admitted before
// any window showed their load (docs/BENCHMARKS.md). The projection adds
// their estimated share: measured CPU + the unmeasured publishers' missing
// shares × cost per publisher ÷ cores.
//
// Publishers are counted, not tracked: ingest says how many there are
// (Admit's argument, Settings.Publishers at each sample), not which one
// left. So the projection works on counts. At each sample, the publishers
// admitted within the horizon (Window plus one Interval, the most a
// measured window can reach back) are "recent" and the rest "steady": in
// the measurement for the whole window. At Admit, every publisher beyond
// the steady ones is unmeasured, and adds the share of its cost that the
// measurement misses (project). A departure lowers the count, so it frees
// a share whichever publisher left; a recent publisher that ages past the
// horizon becomes steady at the next sample, in the measured CPU, and is
// no longer projected (never counted twice). When the count at a sample
// says fewer publishers than recent admissions, the oldest of those are
// taken as the ones gone, which leaves the larger projection.
type projection struct {
	mu      sync.Mutex
	on      bool // MaxCPU > 0: record admissions
	window  time.Duration
	horizon time.Duration
	defCost float64
	now     func() time.Time

	admits []time.Time // admissions since the last sample's horizon, oldest first
	count  int         // publishers last known (Admit, Settings.Publishers)

	// From the last sample.
	sampleAt    time.Time // when it was taken: the measured window's end
	steady      int       // publishers in the whole measured window
	cost        float64   // cores per publisher
	fromMeasure bool      // cost was measured, not Settings.PublisherCost
}

// projected is the projection for a number of publishers.
type projected struct {
	cpu        float64 // measured + share × cost ÷ cores
	machine    float64 // the other processes' cores + cpu × cores, ÷ the machine's cores
	unmeasured int     // publishers not in the measurement for the whole window
	// share is how many publishers' worth of cost the measurement misses:
	// each unmeasured one counts for the part of the window it was not
	// there (1 when admitted after the sample), so share <= unmeasured.
	share       float64
	since       int // of unmeasured, admitted since the sample (or not covered by the admission times)
	cost        float64
	fromMeasure bool
}

// missing says what the measurement lacks: "8 publishers not yet in it"
// when none of them is partly in it, else how many publishers' worth.
func (p projected) missing() string {
	if p.share < float64(p.unmeasured)-0.05 {
		return fmt.Sprintf("%s of %d recent %s not yet in it", strconv.FormatFloat(p.share, 'f', 1, 64),
			p.unmeasured, plural(p.unmeasured, "publisher", "publishers"))
	}
	return fmt.Sprintf("%d %s not yet in it", p.unmeasured, plural(p.unmeasured, "publisher", "publishers"))
}

func (p projected) costFrom() string {
	if p.fromMeasure {
		return "measured"
	}
	return "limits.publisher_cost"
}

func (p *projection) init(s Settings, now func() time.Time) {
	p.on = s.MaxCPU > 0 || s.MaxMachineCPU > 0
	p.window, p.horizon = s.Window, s.Window+s.Interval
	p.defCost, p.cost = s.PublisherCost, s.PublisherCost
	p.now = now
}

// measured takes a new load sample l taken at now, when publishers
// counted (-1: unknown, use the last count Admit saw); p.mu is held.
func (p *projection) measured(now time.Time, l Load, publishers int) {
	if publishers < 0 {
		publishers = p.count
	} else {
		p.count = publishers
	}
	cut := now.Add(-p.horizon)
	i := 0
	for i < len(p.admits) && !p.admits[i].After(cut) {
		i++
	}
	p.admits = append(p.admits[:0], p.admits[i:]...)
	recent := min(len(p.admits), publishers)
	p.steady = publishers - recent
	// The recent ones are partly in the window: count each for the share
	// of the window it was there (an over-estimate while it negotiated, so
	// the cost comes out low by a little, never high by a lot).
	present := float64(p.steady)
	for _, t := range p.admits[len(p.admits)-recent:] {
		present += min(max(now.Sub(t).Seconds()/p.window.Seconds(), 0), 1)
	}
	p.sampleAt = now
	p.cost, p.fromMeasure = p.defCost, false
	if p.steady >= minMeasured && l.CPU > 0 && l.Cores > 0 {
		p.cost, p.fromMeasure = l.CPU*l.Cores/present, true
	}
}

// admitted records an admission decision for publishers in all (with the
// new one); p.mu is held.
func (p *projection) admitted(publishers int, ok bool) {
	if !ok {
		p.count = publishers - 1
		return
	}
	p.count = publishers
	if !p.on {
		return
	}
	if len(p.admits) >= maxAdmits {
		p.admits = p.admits[1:]
	}
	p.admits = append(p.admits, p.now())
}

// project is the projected load with existing publishers, from the last
// sample l; p.mu is held. Of the existing publishers, those beyond the
// steady ones are the newest admissions (a departure is taken to be an
// older one, which leaves the larger projection). One admitted within the
// measured window is in the measured CPU for the part of the window it was
// there, so it adds only the rest of its cost (the measured span is
// Window to Window+Interval long; the share takes the longer, which errs
// towards refusing); one admitted since the
// sample adds all of it, as does any the admission times do not cover.
// Counting each recent publisher at its full cost would count the ones a
// burst admitted before the sample twice: 50 publishers arriving within
// 2 s had 15 of them refused with 39 % of the cores in use.
func (p *projection) project(existing int, l *Load) projected {
	r := projected{cpu: l.CPU, machine: l.machineWith(l.CPU), cost: p.cost, fromMeasure: p.fromMeasure}
	n := existing - p.steady
	if n <= 0 || l.Cores <= 0 {
		return r
	}
	r.unmeasured = n
	i := len(p.admits) - 1
	for k := 0; k < n; k++ {
		share := 1.0
		if i >= 0 {
			if t := p.admits[i]; !t.After(p.sampleAt) && p.horizon > 0 {
				share = 1 - min(max(p.sampleAt.Sub(t).Seconds()/p.horizon.Seconds(), 0), 1)
			} else {
				r.since++
			}
			i--
		} else {
			r.since++
		}
		r.share += share
	}
	r.cpu += r.share * p.cost / l.Cores
	// The machine's projection adds only the publishers admitted since the
	// sample: one admitted before it is taken to be in the measurement
	// whole. A burst's first seconds cost more than its streams will
	// (ICE, DTLS and first keyframes, on the clients' side too when they
	// share the machine), so projecting them as the process check does
	// refused half of 50 publishers that the machine then carried at 70 %.
	r.machine = l.machineWith(l.CPU + float64(r.since)*p.cost/l.Cores)
	return r
}
