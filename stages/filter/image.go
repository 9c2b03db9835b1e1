package filter

import "fmt"

// Image overlays a picture file (PNG with alpha, JPEG…) at (X, Y), e.g. a
// logo. The file is read once when the stage starts.
type Image struct {
	NoOp
	// Path is the image file.
	Path string
	// X and Y place the image's top-left corner; negative values count from
	// the right and bottom edges.
	X, Y int
}

// Video implements Filter.
func (m Image) Video(in, out string) string {
	x, y := fmt.Sprint(m.X), fmt.Sprint(m.Y)
	if m.X < 0 {
		x = fmt.Sprintf("W-w%d", m.X)
	}
	if m.Y < 0 {
		y = fmt.Sprintf("H-h%d", m.Y)
	}
	logo := "logo_" + out
	return fmt.Sprintf("movie=filename=%s[%s];[%s][%s]overlay=x=%s:y=%s[%s]", escape(m.Path), logo, in, logo, x, y, out)
}
