// Command whipcast-bench loads a WHIP gateway (whipcast, or another one
// through URL templates) with N publishers and HLS/DASH readers and
// reports what they saw; see docs/BENCHMARKS.md.
package main

import (
	"os"

	"github.com/whipcast/whipcast/internal/bench"
)

func main() { os.Exit(bench.Run(os.Args[1:], os.Stdout, os.Stderr)) }
