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
