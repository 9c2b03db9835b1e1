package filter

import "fmt"

// Gain multiplies the audio volume by Factor (1 = unchanged, 2 ≈ +6 dB).
type Gain struct {
	NoOp
	Factor float64
}

// Audio implements Filter.
func (g Gain) Audio(in, out string) string {
	return fmt.Sprintf("[%s]volume=%g[%s]", in, g.Factor, out)
}
