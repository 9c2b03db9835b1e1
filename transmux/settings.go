package transmux

import "time"

// Default values used for zero Settings fields.
const (
	DefaultSegmentTarget = 2 * time.Second
	DefaultPartTarget    = 200 * time.Millisecond
	// DefaultMaxPending bounds how many complete samples a following track
	// (audio) may queue while it waits for the leading track (video) to decide
	// where the next cut is; beyond it the oldest are dropped.
	DefaultMaxPending = 512
)

// Settings configure a Transmuxer. The zero value of each field means its
// default; New never writes into the caller's Settings.
type Settings struct {
	// SegmentTarget is the segment duration aimed at: a segment ends at the
	// first video keyframe at least SegmentTarget − min(SegmentTarget/4,
	// 500 ms) after its start, so the keyframes ingest requests just ahead
	// of the target cut there (audio-only streams cut at any frame).
	// Default 2 s.
	SegmentTarget time.Duration
	// PartTarget is the target duration of a part (LL-HLS partial segment,
	// CMAF chunk). A part is closed before the next frame would make it
	// longer than this. Default 200 ms.
	PartTarget time.Duration
	// FirstSegment is the shortest first segment of a video stream. Once
	// this much has been muxed after the first keyframe, the transmuxer asks
	// the publisher once for a keyframe (the stream's RequestKeyframe: a PLI
	// to a WebRTC publisher) and ends the first segment at the first
	// keyframe from there on, however short of SegmentTarget, so the first
	// playlist comes about FirstSegment plus one round trip after the first
	// keyframe instead of a whole keyframe interval. A publisher that
	// ignores the request gets its first segment cut at its next keyframe
	// (with a keyframe interval of at least SegmentTarget, as before). Later
	// segments follow SegmentTarget. Negative: off, the first segment is cut
	// like any other. Default PartTarget, so the first segment holds at
	// least one whole part.
	FirstSegment time.Duration
	// MaxPending bounds the samples a following track queues while waiting
	// for the leading track. Default DefaultMaxPending.
	MaxPending int
	// ReaderQueue is the queue length, in frames, of the reader Run
	// subscribes when it has to resubscribe; 0 means media.DefaultQueueLen.
	ReaderQueue int
	// Idle is how long a Service keeps packaging a stream after the last
	// player request (Service.Watch) when nothing else wants it. Default
	// DefaultIdle (30 s). Transmuxers ignore it.
	Idle time.Duration
}

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings { return s.withDefaults() }

func (s Settings) withDefaults() Settings {
	if s.SegmentTarget <= 0 {
		s.SegmentTarget = DefaultSegmentTarget
	}
	if s.PartTarget <= 0 {
		s.PartTarget = DefaultPartTarget
	}
	if s.PartTarget > s.SegmentTarget {
		s.PartTarget = s.SegmentTarget
	}
	if s.FirstSegment == 0 {
		s.FirstSegment = s.PartTarget
	}
	if s.MaxPending <= 0 {
		s.MaxPending = DefaultMaxPending
	}
	return s
}
