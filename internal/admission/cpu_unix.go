//go:build unix

package admission

import (
	"syscall"
	"time"
)

// processCPU is the user and system CPU time of the whole process, every
// thread included (cgo too).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
