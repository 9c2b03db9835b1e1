// Package codec is whipcast's one door to audio and video codecs. Everything
// that decodes or encodes goes through the small interfaces here, so all cgo
// (FFmpeg 5.1 through go-astiav) stays in this package and a build with
// `-tags nocodec` is pure Go: it keeps the passthrough gateway and reports
// ErrNoCodecs for the features that need a codec.
package codec

// Packet is one compressed audio packet with its timestamps in samples of
// the packet's sample rate.
type Packet struct {
	// Data is the encoded payload (for AAC one raw access unit, no ADTS).
	Data []byte
	// PTS is the presentation time of the first sample, in samples. For an
	// encoder with priming (AAC), the first packet starts Delay samples
	// before the first input sample, so decoded audio lines up with the input.
	PTS int64
	// Duration is the number of samples the packet decodes to.
	Duration int64
}

// AudioFormat describes what an AudioTranscoder produces.
type AudioFormat struct {
	// SampleRate in Hz; packet timestamps count samples at this rate.
	SampleRate int
	// Channels is the channel count.
	Channels int
	// Config is the codec's out-of-band configuration; for AAC the MPEG-4
	// AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).
	Config []byte
	// Delay is the encoder delay in samples (priming samples: 1024 for
	// FFmpeg's native AAC encoder).
	Delay int
}

// AudioTranscoder turns compressed audio of one codec into another, one input
// packet at a time. It is used by one goroutine.
type AudioTranscoder interface {
	// Transcode decodes one input packet whose first sample is at pts (in
	// samples of the input rate) and returns the output packets that became
	// ready; often none, as the encoder works in larger frames.
	Transcode(data []byte, pts int64) ([]Packet, error)
	// Flush ends the input and returns the packets still buffered.
	Flush() ([]Packet, error)
	// Format describes the output.
	Format() AudioFormat
	// Close frees the codec state. Safe to call more than once.
	Close() error
}

// AACSettings configures NewOpusToAAC.
type AACSettings struct {
	// Bitrate in bits per second. Default 128000.
	Bitrate int
	// Channels of the output. Default 2 (stereo).
	Channels int
}

// DefaultAACBitrate is AACSettings.Bitrate when zero.
const DefaultAACBitrate = 128000

// AACSampleRate is the output rate of NewOpusToAAC: Opus always decodes to
// 48 kHz, and keeping that rate avoids resampling.
const AACSampleRate = 48000

// MonoBitrate is the AAC bitrate of a mono transcode when a stereo one gets
// stereo bits/s: half, as AAC-LC without joint stereo codes each channel on
// its own, so the same bits per channel keep the same quality. Never below
// 16000, the lowest bitrate NewOpusToAAC takes.
func MonoBitrate(stereo int) int {
	if stereo == 0 {
		stereo = DefaultAACBitrate
	}
	return max(stereo/2, 16000)
}
