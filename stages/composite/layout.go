// Package composite mixes the participants of a room into one stream: every
// participant's video decoded and laid out on a canvas of fixed size and
// frame rate, every participant's audio decoded and mixed with a limiter,
// both encoded again (H.264 and Opus) and published as the stream
// {room}/composite, which takes HLS, DASH, WHEP, RTMP and recordings like any
// published stream.
//
// One goroutine (the composite's) owns the canvas, the mixer, the encoders
// and the output stream; each participant has a goroutine that decodes its
// stream and hands pictures and samples over channels. Output time is the
// composite's own clock: frame k is due at start + k/fps and shows, for each
// participant, the newest picture captured at least Delay before; audio is
// placed on the same clock by capture time, so each participant keeps its
// own lip sync and joining or leaving never stops the output.
package composite

import "math"

// Layouts.
const (
	// Grid puts up to MaxVisible participants in a grid that adapts to
	// their number (1: whole canvas, 2: side by side, 3–4: 2×2, 5–6: 3×2,
	// 7–9: 3×3), the last row centred.
	Grid = "grid"
	// Speaker shows the active speaker (loudest over the last second or so)
	// large across the top three quarters and up to four others as
	// thumbnails in the strip below.
	Speaker = "speaker"
)

// MaxVisible is the most participants a grid shows; more are heard but not
// seen (the first to join are shown).
const MaxVisible = 9

// maxThumbs is how many thumbnails the speaker layout shows.
const maxThumbs = 4

// Rect is a tile of the canvas, in pixels; X, Y, W and H are even so tiles
// start on chroma samples.
type Rect struct{ X, Y, W, H int }

// Center returns the tile's middle point.
func (r Rect) Center() (int, int) { return r.X + r.W/2, r.Y + r.H/2 }

// Tiles returns the tiles of layout for n participants on a w×h canvas; its
// length is min(n, what the layout shows). For Speaker the first tile is the
// speaker's.
func Tiles(layout string, n, w, h int) []Rect {
	if n <= 0 {
		return nil
	}
	if layout == Speaker {
		return speakerTiles(n, w, h)
	}
	return gridTiles(n, w, h)
}

func gridTiles(n, w, h int) []Rect {
	n = min(n, MaxVisible)
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	cw, ch := (w/cols)&^1, (h/rows)&^1
	// Centre the grid when the division leaves a few pixels over.
	ox, oy := ((w-cols*cw)/2)&^1, ((h-rows*ch)/2)&^1
	out := make([]Rect, 0, n)
	for i := 0; i < n; i++ {
		row, col := i/cols, i%cols
		inRow := cols
		if row == rows-1 {
			inRow = n - row*cols
		}
		// A short last row is centred.
		shift := ((cols - inRow) * cw / 2) &^ 1
		out = append(out, Rect{X: ox + shift + col*cw, Y: oy + row*ch, W: cw, H: ch})
	}
	return out
}

func speakerTiles(n, w, h int) []Rect {
	if n == 1 {
		return []Rect{{0, 0, w &^ 1, h &^ 1}}
	}
	mainH := (h * 3 / 4) &^ 1
	out := []Rect{{0, 0, w &^ 1, mainH}}
	k := min(n-1, maxThumbs)
	tw, th := (w/maxThumbs)&^1, (h-mainH)&^1
	ox := ((w - k*tw) / 2) &^ 1
	for i := 0; i < k; i++ {
		out = append(out, Rect{X: ox + i*tw, Y: mainH, W: tw, H: th})
	}
	return out
}
