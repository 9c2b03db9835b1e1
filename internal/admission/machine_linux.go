package admission

import "os"

// machineCPU reads the machine's CPU time so far, every process's and
// every core's, from /proc/stat (in a container: the host's).
func machineCPU() (machineTimes, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTimes{}, false
	}
	return parseProcStat(b)
}
