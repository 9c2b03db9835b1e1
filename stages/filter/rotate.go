package filter

import "fmt"

// Rotate turns the picture clockwise by 90, 180 or 270 degrees. 90 and 270
// swap width and height.
type Rotate struct {
	NoOp
	// Degrees is 90, 180 or 270.
	Degrees int
}

// Video implements Filter.
func (r Rotate) Video(in, out string) string {
	var f string
	switch r.Degrees {
	case 90:
		f = "transpose=clock"
	case 180:
		f = "transpose=clock,transpose=clock"
	case 270:
		f = "transpose=cclock"
	default:
		return ""
	}
	return fmt.Sprintf("[%s]%s[%s]", in, f, out)
}
