//go:build !linux

package admission

// machineCPU is unknown here: the machine check never refuses.
func machineCPU() (machineTimes, bool) { return machineTimes{}, false }
