package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the tick counts in /proc (USER_HZ, 100 on every
// Linux architecture the gateway runs on).
const userHZ = 100

// procCPU is a process's CPU time so far: utime + stime, fields 14 and 15
// of /proc/PID/stat, counted from after the command name (which may hold
// spaces and parentheses, so it is skipped to its last ')').
func procCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no ')' in stat", ErrProc)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: %d fields after the name", ErrProc, len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrProc, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// procMemory reads VmHWM (peak resident set) and VmRSS from the text of
// /proc/PID/status, in bytes.
func procMemory(status string) (hwm, rss int64, err error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	found := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%w: %s: %q", ErrProc, k, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: %s: %v", ErrProc, k, err)
		}
		if k == "VmHWM" {
			hwm = n * 1024
		} else {
			rss = n * 1024
		}
		found++
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("%w: no VmHWM/VmRSS", ErrProc)
	}
	return hwm, rss, nil
}

// machineCPU reads the first line of /proc/stat: busy and total ticks of
// all CPUs (busy is everything but idle and iowait).
func machineCPU(stat string) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("%w: /proc/stat first line %q", ErrProc, line)
	}
	for i, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: /proc/stat: %v", ErrProc, err)
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

// sample is one reading of the gateway process (when pid > 0) and of the
// machine.
type sample struct {
	at          time.Time
	cpu         time.Duration
	busy, total uint64
}

func readSample(pid int) (sample, error) {
	s := sample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		s.busy, s.total, _ = machineCPU(string(b))
	}
	if pid <= 0 {
		return s, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	s.cpu, err = procCPU(string(b))
	return s, err
}

func readMemory(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return procMemory(string(b))
}
