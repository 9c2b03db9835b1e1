package filter

import "fmt"

// Scale resizes the picture to Width×Height (not keeping the aspect ratio:
// add Crop first for that).
type Scale struct {
	NoOp
	Width, Height int
}

// Video implements Filter.
func (s Scale) Video(in, out string) string {
	return fmt.Sprintf("[%s]scale=%d:%d[%s]", in, s.Width, s.Height, out)
}
