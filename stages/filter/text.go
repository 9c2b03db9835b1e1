package filter

import (
	"fmt"
	"strings"

	"github.com/whipcast/whipcast/stages/codec"
)

// Text draws a title (top left) and/or the wall clock (bottom left) in
// white on a translucent box (libavfilter drawtext, font codec.FontFile).
type Text struct {
	NoOp
	// Title is drawn as written; no expansion of %{...}.
	Title string
	// Clock draws the local time, YYYY-MM-DD HH:MM:SS.
	Clock bool
	// Size is the font size in pixels. Default 24.
	Size int
}

// Video implements Filter.
func (t Text) Video(in, out string) string {
	size := t.Size
	if size == 0 {
		size = 24
	}
	common := fmt.Sprintf("fontfile=%s:fontsize=%d:fontcolor=white:box=1:boxcolor=black@0.5:boxborderw=4", escape(codec.FontFile), size)
	var fs []string
	if t.Title != "" {
		fs = append(fs, fmt.Sprintf("drawtext=%s:expansion=none:x=10:y=10:text=%s", common, escape(t.Title)))
	}
	if t.Clock {
		fs = append(fs, fmt.Sprintf("drawtext=%s:x=10:y=h-th-10:text=%s", common, escape("%{localtime}")))
	}
	if len(fs) == 0 {
		return ""
	}
	return fmt.Sprintf("[%s]%s[%s]", in, strings.Join(fs, ","), out)
}
