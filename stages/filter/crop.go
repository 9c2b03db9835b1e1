package filter

import "fmt"

// Crop keeps the Width×Height rectangle whose top-left corner is (X, Y).
type Crop struct {
	NoOp
	X, Y, Width, Height int
}

// Video implements Filter.
func (c Crop) Video(in, out string) string {
	return fmt.Sprintf("[%s]crop=w=%d:h=%d:x=%d:y=%d[%s]", in, c.Width, c.Height, c.X, c.Y, out)
}
