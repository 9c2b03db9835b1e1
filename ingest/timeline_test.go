package ingest

import (
	"math"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/rtpsim"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestNTPRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{t0, t0.Add(123456789), time.Unix(0, 0)} {
		got := ntpToTime(timeToNTP(tm))
		if d := got.Sub(tm); d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("%v → %v", tm, got)
		}
	}
}

type tlEvent struct {
	sr      bool
	track   int
	ts      uint32
	ntp     time.Time // for SRs
	arrival time.Duration
	wantDTS int64 // frames only; -1 = don't check
}

func TestTimeline(t *testing.T) {
	tests := []struct {
		name   string
		clocks []uint32
		events []tlEvent
	}{
		{
			name:   "starts at zero, follows RTP",
			clocks: []uint32{90000},
			events: []tlEvent{
				{ts: 1000, arrival: 0, wantDTS: 0},
				{ts: 4000, arrival: ms(40), wantDTS: 3000},
				{ts: 7000, arrival: ms(60), wantDTS: 6000}, // RTP, not arrival, spaces frames
			},
		},
		{
			name:   "32-bit wrap",
			clocks: []uint32{90000},
			events: []tlEvent{
				{ts: math.MaxUint32 - 2999, arrival: 0, wantDTS: 0},
				{ts: 0, arrival: ms(33), wantDTS: 3000},
				{ts: 3000, arrival: ms(66), wantDTS: 6000},
			},
		},
		{
			name:   "reordered older timestamp across wrap stays monotonic",
			clocks: []uint32{90000},
			events: []tlEvent{
				{ts: math.MaxUint32 - 2999, arrival: 0, wantDTS: 0},
				{ts: 3000, arrival: ms(66), wantDTS: 6000},
				{ts: 0, arrival: ms(70), wantDTS: 6001}, // older: clamped, not a 13-hour jump
				{ts: 6000, arrival: ms(100), wantDTS: 9000},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := NewTimeline(tc.clocks...)
			for i, ev := range tc.events {
				at := t0.Add(ev.arrival)
				if ev.sr {
					tl.SenderReport(ev.track, timeToNTP(ev.ntp), ev.ts, at)
					continue
				}
				dts, _ := tl.Frame(ev.track, ev.ts, at)
				if ev.wantDTS >= 0 && absDiff(dts, ev.wantDTS) > 1 {
					t.Errorf("event %d: DTS %d, want %d", i, dts, ev.wantDTS)
				}
			}
		})
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// simResult is what a simulated publish through a Timeline gave.
type simResult struct {
	frames   [2]int
	steps    [2]int // forward alignment steps
	first    [2]simFrame
	last     [2]simFrame
	worstAV  time.Duration // largest |A/V offset| after settle
	avAt     []time.Duration
	accepted uint64
	rejected uint64
}

type simFrame struct {
	capture time.Duration
	dts     int64
}

// runSim publishes snd's video (track 0, 90 kHz) and audio (track 1, 48 kHz)
// for dur through a Timeline and checks, as it goes, what every output
// depends on: DTS and wall time strictly increasing per track, and no
// consecutive DTS distance squeezed or stretched beyond the slew bound
// against the RTP distance. A/V offset is the difference between the two
// tracks' (DTS − capture time), measured from settle on.
func runSim(t *testing.T, snd *rtpsim.Sender, dur, settle time.Duration) simResult {
	t.Helper()
	tl := NewTimeline(90000, 48000)
	var res simResult
	var lastTS [2]uint32
	var lastWall [2]time.Time
	var off [2]time.Duration
	var haveOff [2]bool
	clock := [2]int64{90000, 48000}
	for {
		ev := snd.Next()
		if ev.Capture > dur {
			break
		}
		if ev.SR {
			tl.SenderReport(ev.Track, ev.NTP, ev.TS, ev.Arrival)
			continue
		}
		k := ev.Track
		dts, wall := tl.Frame(k, ev.TS, ev.Arrival)
		if n := res.frames[k]; n > 0 {
			prev := res.last[k]
			if dts <= prev.dts {
				t.Fatalf("track %d frame %d: DTS %d after %d", k, ev.Index, dts, prev.dts)
			}
			if !wall.After(lastWall[k]) {
				t.Fatalf("track %d frame %d: wall %v after %v", k, ev.Index, wall, lastWall[k])
			}
			rtpd := int64(ev.TS - lastTS[k])
			switch d := dts - prev.dts; {
			case d < rtpd-rtpd*11/1000-2:
				t.Fatalf("track %d frame %d: DTS squeezed: advanced %d for %d RTP ticks", k, ev.Index, d, rtpd)
			case d > rtpd+rtpd*11/1000+2:
				// A forward step aligns a track to the others, once or
				// twice at the start; never more.
				if res.steps[k]++; res.steps[k] > 2 || d-rtpd > clock[k] {
					t.Fatalf("track %d frame %d: DTS advanced %d for %d RTP ticks (step %d)", k, ev.Index, d, rtpd, res.steps[k])
				}
			}
		} else {
			res.first[k] = simFrame{ev.Capture, dts}
		}
		res.frames[k]++
		res.last[k] = simFrame{ev.Capture, dts}
		lastTS[k], lastWall[k] = ev.TS, wall
		off[k] = time.Duration(dts)*time.Second/time.Duration(clock[k]) - ev.Capture
		haveOff[k] = true
		if ev.Capture >= settle && haveOff[0] && haveOff[1] {
			av := off[0] - off[1]
			if av < 0 {
				av = -av
			}
			res.worstAV = max(res.worstAV, av)
		}
	}
	res.accepted, res.rejected = tl.SRStats()
	return res
}

// duration checks that each track's output covers the publish within 2 %.
func (r simResult) checkDuration(t *testing.T) { t.Helper(); r.checkDurationWithin(t, 0.02) }

func (r simResult) checkDurationWithin(t *testing.T, bound float64) {
	t.Helper()
	clock := [2]int64{90000, 48000}
	for k := range 2 {
		in := r.last[k].capture - r.first[k].capture
		out := time.Duration(r.last[k].dts-r.first[k].dts) * time.Second / time.Duration(clock[k])
		if rel := math.Abs(out.Seconds()/in.Seconds() - 1); rel > bound {
			t.Errorf("track %d: %v of output for %v published (%.1f %%)", k, out, in, rel*100)
		}
	}
}

func sender(mod func(*rtpsim.Sender)) *rtpsim.Sender {
	s := &rtpsim.Sender{
		Tracks: []rtpsim.Track{
			{ClockRate: 90000, Interval: time.Second / 30, Skew: 100e-6, Origin: 123456789},
			// Audio is captured with the video but arrives 60 ms later.
			{ClockRate: 48000, Interval: 20 * time.Millisecond, Skew: -100e-6, Origin: 3999999999, Delay: 60 * time.Millisecond},
		},
		SRInterval: time.Second,
		NTPBase:    t0.Add(-5 * time.Hour), // the sender's clock is hours off ours
		LocalBase:  t0,
		Transit:    20 * time.Millisecond,
		Jitter:     30 * time.Millisecond,
		Seed:       11,
	}
	if mod != nil {
		mod(s)
	}
	return s
}

// TestTimelineSenderReports publishes through lying and honest clocks.
func TestTimelineSenderReports(t *testing.T) {
	const dur = 5 * time.Minute
	tests := []struct {
		name string
		mod  func(*rtpsim.Sender)
		// maxAV is the A/V offset allowed: 40 ms with believable SRs; with
		// lying ones, what arrival gives (60 ms audio delay + jitter).
		maxAV time.Duration
		// rejects: SRs must have been rejected.
		rejects bool
		// durBound overrides the 2 % duration bound.
		durBound float64
	}{
		{name: "honest, ±100 ppm, SR every 1 s", maxAV: 40 * time.Millisecond},
		{name: "honest, SR every 5 s", mod: func(s *rtpsim.Sender) { s.SRInterval = 5 * time.Second }, maxAV: 40 * time.Millisecond},
		{name: "NTP at 2x", mod: func(s *rtpsim.Sender) { s.SRScale = 2 }, maxAV: 100 * time.Millisecond, rejects: true},
		{name: "NTP at 0.5x (GStreamer 1.22)", mod: func(s *rtpsim.Sender) { s.SRScale = 0.5 }, maxAV: 100 * time.Millisecond, rejects: true},
		{name: "NTP jumps forward 3 s and stays", mod: func(s *rtpsim.Sender) { s.SRJumpAt, s.SRJump = time.Minute, 3*time.Second }, maxAV: 40 * time.Millisecond, rejects: true},
		{name: "NTP jumps back 3 s and stays", mod: func(s *rtpsim.Sender) { s.SRJumpAt, s.SRJump = time.Minute, -3*time.Second }, maxAV: 40 * time.Millisecond, rejects: true},
		{name: "one SR 2 s off", mod: func(s *rtpsim.Sender) {
			s.SRJumpAt, s.SRJump, s.SRJumpOnce = time.Minute, 2*time.Second, true
		}, maxAV: 40 * time.Millisecond, rejects: true},
		{name: "NTP 0.4 % fast: within the SR-to-SR bound, not over the publish", mod: func(s *rtpsim.Sender) { s.SRScale = 1.004 }, maxAV: 40 * time.Millisecond, rejects: true, durBound: 0.0015},
		{name: "NTP 300 ppm slow (a slewing NTP daemon)", mod: func(s *rtpsim.Sender) { s.SRScale = 1 - 300e-6 }, maxAV: 40 * time.Millisecond},
		{name: "RTP wrap on both tracks", mod: func(s *rtpsim.Sender) {
			s.Tracks[0].Origin = math.MaxUint32 - 90000*60
			s.Tracks[1].Origin = math.MaxUint32 - 48000*90
		}, maxAV: 40 * time.Millisecond},
		{name: "no jitter, audio first", mod: func(s *rtpsim.Sender) {
			s.Jitter = 0
			s.Tracks[0].Delay, s.Tracks[1].Delay = 80*time.Millisecond, 0
		}, maxAV: 40 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runSim(t, sender(tc.mod), dur, 15*time.Second)
			t.Logf("frames %v, worst A/V %v after 15 s, SRs believed %d, rejected %d", r.frames, r.worstAV, r.accepted, r.rejected)
			if tc.durBound == 0 {
				tc.durBound = 0.02
			}
			r.checkDurationWithin(t, tc.durBound)
			if r.worstAV > tc.maxAV {
				t.Errorf("A/V offset %v, want ≤ %v", r.worstAV, tc.maxAV)
			}
			if tc.rejects != (r.rejected > 0) {
				t.Errorf("%d SRs rejected", r.rejected)
			}
			if !tc.rejects && r.accepted == 0 {
				t.Error("no SR believed")
			}
		})
	}
}

// TestTimelineLongDrift runs two hours of ±100 ppm RTP clocks with SRs
// every 5 s, our clock 150 ppm off the sender's, and an RTP wrap in the
// middle: the SRs keep A/V within 40 ms
// where the RTP clocks alone would drift 1.4 s apart.
func TestTimelineLongDrift(t *testing.T) {
	const dur = 2 * time.Hour
	r := runSim(t, sender(func(s *rtpsim.Sender) {
		s.SRInterval = 5 * time.Second
		s.LocalSkew = -150e-6 // our clock against the sender's
		s.Tracks[0].Origin = math.MaxUint32 - 90000*3600
		s.Tracks[1].Origin = math.MaxUint32 - 48000*3600
	}), dur, 15*time.Second)
	t.Logf("worst A/V offset over %v: %v", dur, r.worstAV)
	r.checkDuration(t)
	if r.worstAV > 40*time.Millisecond {
		t.Errorf("A/V offset %v", r.worstAV)
	}
}

// TestTimelineNoSR: without Sender Reports, each track follows its RTP
// clock from its first arrival.
func TestTimelineNoSR(t *testing.T) {
	r := runSim(t, sender(func(s *rtpsim.Sender) { s.SRInterval = 24 * time.Hour }), time.Minute, 0)
	r.checkDuration(t)
	if r.worstAV > 100*time.Millisecond {
		t.Errorf("A/V offset %v", r.worstAV)
	}
}

// TestTimelineGarbageSR: an SR whose RTP time is nowhere near the media
// (or comes before any packet) neither moves the unwrapping nor the
// timeline, and frames that arrive reordered after SR alignment stay
// strictly increasing.
func TestTimelineGarbageSR(t *testing.T) {
	tl := NewTimeline(90000)
	if tl.SenderReport(0, timeToNTP(t0), 12345, t0) {
		t.Error("SR before any packet believed")
	}
	var last int64 = -1
	frame := func(i int, ts uint32) {
		dts, _ := tl.Frame(0, ts, t0.Add(time.Duration(i)*time.Second/30))
		if dts <= last {
			t.Fatalf("frame %d: DTS %d after %d", i, dts, last)
		}
		last = dts
	}
	for i := range 300 {
		ts := uint32(1000 + i*3000)
		if i%30 == 0 {
			at := t0.Add(time.Duration(i) * time.Second / 30)
			tl.SenderReport(0, timeToNTP(at), ts, at)
		}
		if i == 150 {
			// Garbage: 2^31-1 ticks ahead, then behind.
			tl.SenderReport(0, timeToNTP(t0.Add(5*time.Second)), ts+math.MaxInt32, t0.Add(5*time.Second))
			tl.SenderReport(0, timeToNTP(t0.Add(5*time.Second)), ts-math.MaxInt32, t0.Add(5*time.Second))
		}
		frame(i, ts)
	}
	if want := int64(1000 + 299*3000 - 1000); absDiff(last, want) > 90 {
		t.Errorf("last DTS %d, want %d ± 1 ms", last, want)
	}
	// A reordered (older) frame is placed just after the newest.
	dts, _ := tl.Frame(0, uint32(1000+298*3000), t0.Add(10*time.Second))
	if dts != last+1 {
		t.Errorf("reordered frame: DTS %d, want %d", dts, last+1)
	}
	if acc, rej := tl.SRStats(); acc < 8 || rej != 2 {
		t.Errorf("SRs believed %d, rejected %d; want ≥ 8 and 2", acc, rej)
	}
}
