//go:build !nocodec

package codec

//#cgo pkg-config: libavutil
//#include <libavutil/frame.h>
import "C"
import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// plane returns n bytes of a frame's data plane i as a Go slice over the C
// buffer, for copying pictures and samples in and out without the per-call
// buffers FrameData.Bytes makes (go-astiav v0.16.0 has no plane accessor).
// The slice is valid until the frame is unreferenced.
func plane(f *astiav.Frame, i, n int) []byte {
	c := (*C.AVFrame)(f.UnsafePointer())
	p := c.data[i]
	if p == nil || n <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), n)
}

// makeWritable makes f's buffers writable, copying them only when someone
// else (an encoder still holding the last frame) has a reference: go-astiav
// v0.16.0 has no wrapper for av_frame_make_writable.
func makeWritable(f *astiav.Frame) error {
	if ret := C.av_frame_make_writable((*C.AVFrame)(f.UnsafePointer())); ret < 0 {
		return astiav.Error(int(ret))
	}
	return nil
}

// unsafeFloats views n float32 values in b (native byte order, as FFmpeg
// keeps samples).
func unsafeFloats(b []byte, n int) []float32 {
	if len(b) < 4*n || n == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

// receivePackets appends every packet enc has ready to out. what names the
// encoder in errors. Packet.Data from astiav is already a Go copy
// (C.GoBytes), so it outlives pkt.
func receivePackets(enc *astiav.CodecContext, pkt *astiav.Packet, out []Packet, what string) ([]Packet, error) {
	for {
		err := enc.ReceivePacket(pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("codec: %s encode: %w", what, err)
		}
		out = append(out, Packet{Data: pkt.Data(), PTS: pkt.Pts(), Duration: pkt.Duration()})
		pkt.Unref()
	}
}
