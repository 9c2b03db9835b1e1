//go:build nocodec

package codec

// Available reports whether this build has codec support.
const Available = false

// NewOpusToAAC returns ErrNoCodecs in a nocodec build.
func NewOpusToAAC(AACSettings) (AudioTranscoder, error) { return nil, ErrNoCodecs }

// NewVideoDecoder returns ErrNoCodecs in a nocodec build.
func NewVideoDecoder() (VideoDecoder, error) { return nil, ErrNoCodecs }

// NewVideoTranscoder returns ErrNoCodecs in a nocodec build.
func NewVideoTranscoder(VideoSettings) (VideoTranscoder, error) { return nil, ErrNoCodecs }

// LiveVideoCodecs is always 0 in a nocodec build.
func LiveVideoCodecs() int { return 0 }

// NewOpusFilter returns ErrNoCodecs in a nocodec build.
func NewOpusFilter(string, int) (AudioTranscoder, error) { return nil, ErrNoCodecs }

// NewFitDecoder returns ErrNoCodecs in a nocodec build.
func NewFitDecoder() (FitDecoder, error) { return nil, ErrNoCodecs }

// NewVideoEncoder returns ErrNoCodecs in a nocodec build.
func NewVideoEncoder(VideoSettings, int, int, int) (VideoEncoder, error) { return nil, ErrNoCodecs }

// NewOpusDecoder returns ErrNoCodecs in a nocodec build.
func NewOpusDecoder() (PCMDecoder, error) { return nil, ErrNoCodecs }

// NewOpusEncoder returns ErrNoCodecs in a nocodec build.
func NewOpusEncoder(int) (PCMEncoder, error) { return nil, ErrNoCodecs }
