package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/whipcast/whipcast/config"
)

// runtime.gogc sets the collector's percentage, unless GOGC is in the
// environment: then the runtime's own reading of it stays.
func TestSetGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	setGC(config.Runtime{GOGC: 30}, []string{"HOME=/root"}, log)
	if got := debug.SetGCPercent(100); got != 30 {
		t.Fatalf("GC percent %d, want 30 from the config", got)
	}
	setGC(config.Runtime{GOGC: 30}, []string{"GOGC=100"}, log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent %d, want 100: GOGC in the environment wins", got)
	}
}
