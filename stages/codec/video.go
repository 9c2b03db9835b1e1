package codec

// Picture is one decoded video picture in planar YUV 4:2:0 (8 bit), planes
// packed without padding: Y is Width×Height bytes, Cb and Cr are each
// ((Width+1)/2)×((Height+1)/2) bytes.
type Picture struct {
	Width, Height int
	Y, Cb, Cr     []byte
	// PTS is the presentation time in 90 kHz units.
	PTS int64
}

// Luma returns the Y value at (x, y).
func (p *Picture) Luma(x, y int) byte { return p.Y[y*p.Width+x] }

// VideoPacket is one encoded H.264 access unit.
type VideoPacket struct {
	// Data is the access unit in Annex-B form (start codes); a keyframe
	// carries its SPS and PPS in front of the IDR slice.
	Data []byte
	// PTS and DTS are in 90 kHz units.
	PTS, DTS int64
	// Keyframe is true for an IDR access unit.
	Keyframe bool
}

// VideoDecoder decodes H.264 access units to pictures. It is used by one
// goroutine.
type VideoDecoder interface {
	// Decode takes one access unit in Annex-B form (parameter sets in front
	// of a keyframe) with its PTS in 90 kHz units and returns the pictures
	// that became ready. A corrupt unit is skipped without an error.
	Decode(annexB []byte, pts int64) ([]*Picture, error)
	// Close frees the decoder. Safe to call more than once.
	Close() error
}

// VideoTranscoder decodes H.264, runs the pictures through a libavfilter
// graph and encodes H.264 again (libx264, zerolatency, no B-frames, so DTS
// equals PTS). It is used by one goroutine, except RequestKeyframe.
type VideoTranscoder interface {
	// Transcode takes one access unit like VideoDecoder.Decode and returns
	// the encoded access units that became ready.
	Transcode(annexB []byte, pts int64) ([]VideoPacket, error)
	// RequestKeyframe makes the next encoded picture an IDR. Safe to call
	// from any goroutine.
	RequestKeyframe()
	// Flush ends the input and returns what is still buffered.
	Flush() ([]VideoPacket, error)
	// Close frees the decoder, the graph and the encoder. Safe to call more
	// than once.
	Close() error
}

// VideoSettings configures NewVideoTranscoder.
type VideoSettings struct {
	// Filter is a libavfilter graph description run between the decoder and
	// the encoder, with unlabelled ends or the labels [in] and [out], e.g.
	// "transpose=clock,scale=640:360". Default "null" (no change).
	Filter string
	// Bitrate of the H.264 encoder in bits per second. Default 1500000.
	Bitrate int
	// KeyframeInterval is the longest gap between IDRs, in 90 kHz units.
	// Default 180000 (2 s).
	KeyframeInterval int64
	// Preset is the x264 preset. Default "veryfast".
	Preset string
}

// Defaults of VideoSettings.
const (
	DefaultVideoBitrate          = 1500000
	DefaultVideoKeyframeInterval = 2 * VideoClockRate
	DefaultVideoPreset           = "veryfast"
)

// VideoClockRate is the timescale of every video timestamp here (RFC 6184).
const VideoClockRate = 90000

// FontFile is the TrueType font drawtext uses (Debian: fonts-dejavu-core).
const FontFile = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

// NewPicture allocates a black picture of w×h (BT.601 limited range: Y 16,
// Cb and Cr 128).
func NewPicture(w, h int) *Picture {
	cw, ch := (w+1)/2, (h+1)/2
	b := make([]byte, w*h+2*cw*ch)
	p := &Picture{Width: w, Height: h, Y: b[:w*h], Cb: b[w*h : w*h+cw*ch], Cr: b[w*h+cw*ch:]}
	p.Fill(16, 128, 128)
	return p
}

// Fill paints the whole picture one colour.
func (p *Picture) Fill(y, cb, cr byte) {
	fill(p.Y, y)
	fill(p.Cb, cb)
	fill(p.Cr, cr)
}

func fill(b []byte, v byte) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for n := 1; n < len(b); n *= 2 {
		copy(b[n:], b[:n])
	}
}

// Fit returns the largest even size with the aspect ratio of w×h that fits
// in boxW×boxH (at least 2×2).
func Fit(w, h, boxW, boxH int) (int, int) {
	if w <= 0 || h <= 0 || boxW <= 0 || boxH <= 0 {
		return 2, 2
	}
	fw, fh := boxW, boxW*h/w
	if fh > boxH {
		fw, fh = boxH*w/h, boxH
	}
	fw, fh = max(fw&^1, 2), max(fh&^1, 2)
	return fw, fh
}

// FitDecoder decodes H.264 and scales every picture to fit a box, keeping
// its aspect ratio: the input of a compositor tile. It is used by one
// goroutine.
type FitDecoder interface {
	// Decode takes one access unit like VideoDecoder.Decode and returns the
	// pictures that became ready, each scaled to Fit(its size, boxW, boxH).
	Decode(annexB []byte, pts int64, boxW, boxH int) ([]*Picture, error)
	// Close frees the decoder and the scaler. Safe to call more than once.
	Close() error
}

// VideoEncoder encodes pictures of one fixed size with libx264 (zerolatency,
// no B-frames, so DTS equals PTS). It is used by one goroutine, except
// RequestKeyframe.
type VideoEncoder interface {
	// Encode takes one picture (PTS in 90 kHz units, increasing) and returns
	// the access units that became ready.
	Encode(p *Picture) ([]VideoPacket, error)
	// RequestKeyframe makes the next picture an IDR. Safe from any goroutine.
	RequestKeyframe()
	// Flush ends the input and returns what is still buffered.
	Flush() ([]VideoPacket, error)
	// Close frees the encoder. Safe to call more than once.
	Close() error
}

// PCMDecoder decodes compressed audio to 48 kHz stereo float samples,
// interleaved (L R L R …), nominally in [-1, 1]. It is used by one goroutine.
type PCMDecoder interface {
	// Decode decodes one packet and appends its samples to dst. A corrupt
	// packet yields no samples and no error.
	Decode(dst []float32, data []byte) ([]float32, error)
	// Close frees the decoder. Safe to call more than once.
	Close() error
}

// PCMEncoder encodes 48 kHz stereo float samples, interleaved, in frames of
// FrameSize samples per channel. It is used by one goroutine.
type PCMEncoder interface {
	// Encode takes exactly FrameSize()×2 interleaved samples whose first
	// sample is at pts (in samples) and returns the packets that became ready.
	Encode(pcm []float32, pts int64) ([]Packet, error)
	// FrameSize is the number of samples per channel Encode takes.
	FrameSize() int
	// Format describes the output.
	Format() AudioFormat
	// Close frees the encoder. Safe to call more than once.
	Close() error
}
