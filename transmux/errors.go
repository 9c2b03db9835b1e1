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
	// ErrNotLive is returned by Watch and Acquire for a stream that is not
	// published (or has ended).
	ErrNotLive = errors.New("transmux: stream is not live")
	// ErrIdle is what sinks get in OnEnd when a stream's packaging stopped
	// for want of demand (no player for Settings.Idle, no recording, no
	// origin): the stream goes on, its packaged state may be dropped.
	ErrIdle = errors.New("transmux: no demand")
	// ErrNoConsumers is returned by Watch and Acquire when no consumer
	// takes the stream: nothing to package it for.
	ErrNoConsumers = errors.New("transmux: no consumer for the stream")
)
