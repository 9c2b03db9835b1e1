package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// runTable is `whipcast-bench table [FILE...]`: it reads the JSON lines of
// earlier runs (stdin when no file is named; lines that are not a report,
// such as the human table, are skipped) and writes one Markdown table, a
// row per run in the order read, as docs/BENCHMARKS.md shows them.
func runTable(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var reports []Report
	read := func(r io.Reader, name string) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 || line[0] != '{' {
				continue
			}
			var rep Report
			if err := json.Unmarshal(line, &rep); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			reports = append(reports, rep)
		}
		return sc.Err()
	}
	if len(args) == 0 {
		if err := read(stdin, "stdin"); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	for _, p := range args {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		err = read(f, p)
		f.Close()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if err := writeMarkdown(stdout, reports); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// writeMarkdown writes reports as the table of docs/BENCHMARKS.md ("1–100
// streams beside MediaMTX"). A distribution with no samples (MediaMTX's
// DASH) is a dash, not 0 ms.
func writeMarkdown(w io.Writer, reports []Report) error {
	var b strings.Builder
	b.WriteString("| run | N | connected | connect p50/p95 | first HLS p50/p95 | first DASH p50/p95 | RTCP lost | pacing | cores/stream | peak RSS/stream | machine busy |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		label := r.Label
		if label == "" {
			label = "—"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %d | %.4f | %.4f | %.1f MiB | %.0f %% |\n",
			label, r.N, r.Connected, pair(r.Connect), pair(r.FirstHLS), pair(r.FirstDASH),
			r.Lost, r.Pacing, r.CoresPerStream, mib(r.PeakRSSStream), r.MachineBusy*100)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// pair is a summary's p50 / p95 in the unit a reader takes in at a glance.
func pair(s Summary) string {
	if s.N == 0 {
		return "—"
	}
	return msOrS(s.P50) + " / " + msOrS(s.P95)
}

func msOrS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}
