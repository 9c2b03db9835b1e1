package ingest

import (
	"math"
	"testing"
	"time"
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
		{
			name:   "SR re-anchors to the sender clock without a jump",
			clocks: []uint32{48000},
			events: []tlEvent{
				{ts: 500, arrival: 0, wantDTS: 0},
				{ts: 1460, arrival: ms(20), wantDTS: 960},
				// SR: sender clock is an hour off ours; only the relation counts.
				{sr: true, ts: 1460, ntp: t0.Add(-time.Hour), arrival: ms(21)},
				{ts: 2420, arrival: ms(40), wantDTS: 1920},
				// Sender's RTP clock drifts: the next SR says 2420+960 was at +21 ms.
				{sr: true, ts: 3380, ntp: t0.Add(-time.Hour).Add(ms(41)), arrival: ms(61)},
				{ts: 3380, arrival: ms(62), wantDTS: 2880 + 48},
			},
		},
		{
			name:   "two tracks, different RTP origins and arrival skew, synced by SRs",
			clocks: []uint32{90000, 48000},
			events: []tlEvent{
				{track: 0, ts: 90000 * 7, arrival: 0, wantDTS: 0},
				// audio captured at the same instant arrives 80 ms later
				{track: 1, ts: 12345, arrival: ms(80), wantDTS: -1},
				{sr: true, track: 0, ts: 90000*7 + 9000, ntp: t0.Add(ms(100)), arrival: ms(100)},
				{sr: true, track: 1, ts: 12345 + 4800, ntp: t0.Add(ms(100)), arrival: ms(180)},
				// both captured at sender time t0+200ms
				{track: 0, ts: 90000*7 + 18000, arrival: ms(200), wantDTS: 18000},
				{track: 1, ts: 12345 + 9600, arrival: ms(280), wantDTS: 9600},
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

// TestTimelineLongDrift simulates an hour of A/V where the sender's audio
// RTP clock runs 100 ppm fast against its NTP clock and packets arrive with
// jitter: with SRs every second the tracks stay within a few ms.
func TestTimelineLongDrift(t *testing.T) {
	tl := NewTimeline(90000, 48000)
	sender := t0.Add(-3 * time.Hour) // sender clock offset
	const dur = time.Hour
	var worst time.Duration
	lastSR := time.Duration(-time.Second)
	for at := time.Duration(0); at < dur; at += 20 * time.Millisecond {
		jitter := time.Duration((int64(at/time.Millisecond)*7919)%30) * time.Millisecond
		vts := uint32(int64(at) * 90000 / int64(time.Second))
		ats := uint32(int64(float64(at)*1.0001) * 48000 / int64(time.Second))
		if at-lastSR >= time.Second {
			lastSR = at
			tl.SenderReport(0, timeToNTP(sender.Add(at)), vts, t0.Add(at))
			tl.SenderReport(1, timeToNTP(sender.Add(at)), ats, t0.Add(at))
		}
		vd, _ := tl.Frame(0, vts, t0.Add(at+jitter))
		ad, _ := tl.Frame(1, ats, t0.Add(at+40*time.Millisecond+jitter))
		skew := time.Duration(vd)*time.Second/90000 - time.Duration(ad)*time.Second/48000
		if skew < 0 {
			skew = -skew
		}
		if skew > worst {
			worst = skew
		}
	}
	t.Logf("worst A/V skew over %v: %v", dur, worst)
	if worst > 5*time.Millisecond {
		t.Errorf("A/V skew %v", worst)
	}
}
