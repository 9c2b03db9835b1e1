package ingest

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestSRLogRollsUp: a clock that lies in every SR (one every 5 s for 30
// minutes) gives one warning when the third is rejected, then one per
// srWarnEvery with the counts, and a summary at the end, not 360 lines;
// one stray rejection of an honest clock gives no warning at all.
func TestSRLogRollsUp(t *testing.T) {
	count := func(out, level string) int { return strings.Count(out, "level="+level+" ") }
	run := func(srs int, rejectedAt func(i int) bool) string {
		var buf bytes.Buffer
		l := newSRLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), "session", "s1", "track", 0)
		t0 := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
		var acc, rej uint64
		for i := range srs {
			if rejectedAt(i) {
				rej++
			} else {
				acc++
			}
			l.observe(t0.Add(time.Duration(i)*5*time.Second), acc, rej, t0, uint32(i))
		}
		l.done()
		return buf.String()
	}

	lying := run(360, func(int) bool { return true })
	if n := count(lying, "WARN"); n != 3 { // at 10 s, 10 min 10 s, 20 min 10 s
		t.Errorf("lying clock, 30 min: %d warnings, want 3:\n%s", n, lying)
	}
	if n := count(lying, "INFO"); n != 1 || !strings.Contains(lying, "rejected=360 accepted=0") {
		t.Errorf("lying clock: want one end summary with rejected=360:\n%s", lying)
	}
	if !strings.Contains(lying, "rejected=3 accepted=0") || !strings.Contains(lying, "rejected_since_last=120") {
		t.Errorf("lying clock: the warnings should carry the counts:\n%s", lying)
	}
	if !strings.Contains(lying, "session=s1 track=0") {
		t.Errorf("the lines should name the session and track:\n%s", lying)
	}

	stray := run(360, func(i int) bool { return i == 1 })
	if stray != "" {
		t.Errorf("one stray rejection logged at Info or above:\n%s", stray)
	}
	honest := run(360, func(int) bool { return false })
	if honest != "" {
		t.Errorf("an honest clock logged:\n%s", honest)
	}
}
