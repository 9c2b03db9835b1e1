package admission

import (
	"bytes"
	"strconv"
)

// machineTimes is the machine's CPU time so far, in the kernel's ticks,
// summed over its cores.
type machineTimes struct {
	busy, total uint64
	cores       int // cores listed
}

// parseProcStat reads /proc/stat's "cpu" line (user nice system idle
// iowait irq softirq steal, guest time already inside user and nice):
// busy is everything but idle and iowait. The "cpuN" lines count the cores.
func parseProcStat(b []byte) (machineTimes, bool) {
	var m machineTimes
	found := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if !bytes.HasPrefix(line, []byte("cpu")) {
			continue
		}
		f := bytes.Fields(line)
		if len(f[0]) > 3 {
			if _, err := strconv.Atoi(string(f[0][3:])); err == nil {
				m.cores++
			}
			continue
		}
		if len(f) < 5 {
			return machineTimes{}, false
		}
		var idle uint64
		for i, s := range f[1:min(len(f), 9)] {
			v, err := strconv.ParseUint(string(s), 10, 64)
			if err != nil {
				return machineTimes{}, false
			}
			m.total += v
			if i == 3 || i == 4 { // idle, iowait
				idle += v
			}
		}
		m.busy = m.total - idle
		found = true
	}
	return m, found && m.cores > 0
}
