package main

import (
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/whipcast/whipcast/config"
)

// setGC applies runtime.gogc unless the environment sets GOGC, which the Go
// runtime has already applied and which an operator's explicit setting must
// keep winning over the file. GOMEMLIMIT is left to the runtime as it is.
func setGC(c config.Runtime, environ []string, log *slog.Logger) {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOGC="); ok && v != "" {
			log.Debug("runtime.gogc overridden by the environment", "GOGC", v)
			return
		}
	}
	if c.GOGC > 0 {
		debug.SetGCPercent(c.GOGC)
	}
}
