package bench

import (
	"bytes"
	"strings"
	"testing"
)

// TestTable turns the JSON lines of two runs (with the human table of one
// of them in between, as `whipcast-bench > file` leaves it) into the doc's
// Markdown rows.
func TestTable(t *testing.T) {
	var in bytes.Buffer
	a := Report{Label: "whipcast-opus", N: 50, Connected: 50, Connect: Summary{N: 50, P50: 16.2, P95: 179},
		FirstHLS: Summary{N: 50, P50: 461, P95: 713}, FirstDASH: Summary{N: 50, P50: 456, P95: 1710},
		Lost: 3, Pacing: 1.001, CoresPerStream: 0.0091, PeakRSSStream: 9122611, MachineBusy: 0.63}
	b := Report{Label: "mediamtx", N: 50, Connected: 49, Connect: Summary{N: 49, P50: 12, P95: 43},
		FirstHLS: Summary{N: 49, P50: 4100, P95: 4210}, Pacing: 1.001, CoresPerStream: 0.0114,
		PeakRSSStream: 21705523, MachineBusy: 0.65}
	if err := a.writeJSON(&in); err != nil {
		t.Fatal(err)
	}
	if err := a.writeTable(&in); err != nil {
		t.Fatal(err)
	}
	if err := b.writeJSON(&in); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runTable(nil, &in, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want header, rule and 2 rows:\n%s", out.String())
	}
	for i, want := range []string{
		"| whipcast-opus | 50 | 50 | 16 ms / 179 ms | 461 ms / 713 ms | 456 ms / 1.71 s | 3 | 1.0010 | 0.0091 | 8.7 MiB | 63 % |",
		"| mediamtx | 50 | 49 | 12 ms / 43 ms | 4.10 s / 4.21 s | — | 0 | 1.0010 | 0.0114 | 20.7 MiB | 65 % |",
	} {
		if lines[2+i] != want {
			t.Errorf("row %d:\n got %s\nwant %s", i, lines[2+i], want)
		}
	}
	if code := runTable(nil, strings.NewReader("{not json\n"), &out, &errb); code != 1 {
		t.Errorf("a broken line: exit %d, want 1", code)
	}
}
