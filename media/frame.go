package media

import "time"

// Frame is one access unit of one track on the stream timeline.
//
// A Frame and the bytes it points to are immutable once written to a Stream:
// every reader (transmuxer, RTMP pusher, recorder) shares the same memory, so
// nobody may modify Data after Stream.Write.
type Frame struct {
	// Track is the track this frame belongs to.
	Track *Track
	// DTS is the decode timestamp in Track.ClockRate units. It is monotonic per
	// track and shares its origin with every other track of the stream, so
	// audio and video are in sync when both are converted to seconds.
	DTS int64
	// PTS is the presentation timestamp in the same units; PTS-DTS is the
	// composition offset (zero without B-frames).
	PTS int64
	// Keyframe is true for an H.264 IDR access unit and for every audio frame.
	Keyframe bool
	// Config is the codec configuration in force for this frame; for H.264 it
	// is non-nil from the first keyframe on. A pointer change means a change of
	// parameters (new init segment, new sequence header).
	Config *Config
	// Data is the payload: for H.264 the NAL units of the access unit in AVCC
	// form (4-byte big-endian length prefixes, no start codes, parameter sets
	// and AUDs removed); for Opus one packet; for AAC one raw frame.
	Data []byte
	// Discontinuity is set on the first frame of each track after the
	// stream's publisher reconnected (a new session resumed the stream within
	// its reconnect window). Timestamps stay monotonic across it, but the
	// media before and after are not one coded sequence: packagers start a
	// new segment with EXT-X-DISCONTINUITY / a new DASH Period, decoders
	// reset. A video frame with Discontinuity is a keyframe.
	Discontinuity bool
	// Time is the wall-clock capture time, from RTCP Sender Reports when the
	// sender sent them, else the arrival time. It feeds EXT-X-PROGRAM-DATE-TIME.
	Time time.Time
}

// Seconds converts a timestamp of the frame's track into seconds.
func (f *Frame) Seconds(ts int64) float64 {
	return float64(ts) / float64(f.Track.ClockRate)
}
