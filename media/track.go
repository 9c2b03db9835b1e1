// Package media is the pipe every other package plugs into: a Track says what
// a stream carries, a Frame is one access unit on the stream's timeline, and a
// Stream fans frames out from its single writer to any number of readers.
//
// media imports nothing of ours and does no I/O: it must stay cheap enough to
// sit on the per-packet path.
package media

import "fmt"

// Kind tells video from audio.
type Kind int

// Track kinds.
const (
	KindVideo Kind = iota + 1
	KindAudio
)

func (k Kind) String() string {
	switch k {
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Codec names a coding format carried by a Track.
type Codec int

// Codecs that the gateway can carry today.
const (
	CodecH264 Codec = iota + 1
	CodecOpus
	CodecAAC
)

func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "h264"
	case CodecOpus:
		return "opus"
	case CodecAAC:
		return "aac"
	}
	return fmt.Sprintf("Codec(%d)", int(c))
}

// Track describes one elementary stream of a Stream. A Track is immutable once
// the Stream is published; parameters that can change mid-stream (H.264 SPS and
// PPS) travel with the frames as a *Config instead.
type Track struct {
	// ID is the track's index in Stream.Tracks.
	ID int
	// Kind is video or audio.
	Kind Kind
	// Codec is the coding format.
	Codec Codec
	// ClockRate is the timescale of Frame.DTS and Frame.PTS: 90000 for video,
	// the sample rate (48000 for Opus) for audio.
	ClockRate uint32
	// Channels is the audio channel count (2 for WebRTC Opus). Zero for video,
	// and for AAC from the Opus→AAC stage, which decides at the first packet:
	// there the frames' AudioSpecificConfig says.
	Channels int
}

// Config holds codec parameters that arrive in band and may change during a
// stream. Ingest keeps one *Config per track and replaces the pointer only
// when the content really changes (libwebrtc repeats SPS/PPS before every
// IDR), so consumers can detect a change by comparing pointers.
type Config struct {
	// SPS and PPS are the H.264 parameter sets, without start codes.
	SPS, PPS []byte
	// Width and Height are the coded picture size taken from the SPS.
	Width, Height int
	// AudioSpecificConfig is the MPEG-4 AudioSpecificConfig for AAC.
	AudioSpecificConfig []byte
}
