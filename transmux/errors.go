package transmux

import "errors"

var (
	// ErrUnsupportedCodec is returned by New for a track whose codec cannot be
	// carried in CMAF by this package (today: anything but H.264, Opus, AAC).
	ErrUnsupportedCodec = errors.New("transmux: unsupported codec")
	// ErrNoTracks is returned by New when no track can be muxed.
	ErrNoTracks = errors.New("transmux: no tracks")
	// ErrBadConfig wraps failures to build an init segment from a Config
	// (an SPS mp4ff cannot parse, an empty AudioSpecificConfig).
	ErrBadConfig = errors.New("transmux: bad codec configuration")
)
