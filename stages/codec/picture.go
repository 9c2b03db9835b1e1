//go:build !nocodec

package codec

import (
	"fmt"

	"github.com/asticode/go-astiav"
)

// pictureFromFrame copies a yuv420p frame into dst (allocated when nil or of
// another size) and returns it.
func pictureFromFrame(f *astiav.Frame, dst *Picture) (*Picture, error) {
	if f.PixelFormat() != astiav.PixelFormatYuv420P && f.PixelFormat() != astiav.PixelFormatYuvj420P {
		return nil, fmt.Errorf("codec: pixel format %s is not yuv420p", f.PixelFormat())
	}
	w, h := f.Width(), f.Height()
	if dst == nil || dst.Width != w || dst.Height != h {
		dst = NewPicture(w, h)
	}
	ls := f.Linesize()
	cw, ch := (w+1)/2, (h+1)/2
	copyPlane(dst.Y, w, plane(f, 0, ls[0]*h), ls[0], w, h)
	copyPlane(dst.Cb, cw, plane(f, 1, ls[1]*ch), ls[1], cw, ch)
	copyPlane(dst.Cr, cw, plane(f, 2, ls[2]*ch), ls[2], cw, ch)
	dst.PTS = f.Pts()
	return dst, nil
}

// frameFromPicture copies p into f, which gets a fresh buffer of p's size: an
// encoder may still hold a reference to the previous one.
func frameFromPicture(p *Picture, f *astiav.Frame) error {
	f.Unref()
	f.SetWidth(p.Width)
	f.SetHeight(p.Height)
	f.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := f.AllocBuffer(0); err != nil {
		return fmt.Errorf("codec: frame buffer: %w", err)
	}
	ls := f.Linesize()
	w, h := p.Width, p.Height
	cw, ch := (w+1)/2, (h+1)/2
	copyPlane(plane(f, 0, ls[0]*h), ls[0], p.Y, w, w, h)
	copyPlane(plane(f, 1, ls[1]*ch), ls[1], p.Cb, cw, cw, ch)
	copyPlane(plane(f, 2, ls[2]*ch), ls[2], p.Cr, cw, cw, ch)
	f.SetPts(p.PTS)
	return nil
}

func copyPlane(dst []byte, dstStride int, src []byte, srcStride, w, h int) {
	for y := 0; y < h; y++ {
		copy(dst[y*dstStride:y*dstStride+w], src[y*srcStride:y*srcStride+w])
	}
}
