package transmux

import "time"

// firstSegment is the rule for a video stream's first segment: a player
// can start only once one segment is complete (the first playlist and MPD
// wait for one, since gohlslib's, ffmpeg's and other parsers refuse a
// playlist of parts alone), and with the normal rule that is a whole
// keyframe interval after the first keyframe — 2 s and more.
//
// So once `after` has been muxed, the transmuxer asks the publisher for one
// keyframe and cuts the first segment at the first keyframe from there on.
// A browser answers within about a round trip and a frame, so the first
// segment lasts about `after` plus that. Asking only then, not at the first
// keyframe, is deliberate:
//   - the first segment holds at least one whole part (PartTarget by
//     default), so every segment has one, as LL-HLS players expect;
//   - the publisher has just sent a keyframe, and the reader's own
//     subscription has asked for one (media.Stream.Subscribe): libwebrtc
//     encoders ignore a second request within 300 ms of the previous one,
//     and ingest spaces its PLIs by that much, so asking sooner would not
//     be answered sooner;
//   - two keyframes a frame apart cost an encoder's rate control a burst
//     of bits for no gain.
//
// It is asked once per Transmuxer (a transmuxer starting later on a live
// stream asks again for its own first segment); a publisher that does not
// answer gets its first segment cut at its next keyframe, which with a
// keyframe interval of at least SegmentTarget is where the normal rule
// cuts it too.
type firstSegment struct {
	open    bool   // the first segment is still being made
	asked   bool   // the keyframe request went out
	after   int64  // in lead timescale; only meaningful while open
	request func() // the stream's RequestKeyframe; may be nil
}

func newFirstSegment(d time.Duration, video bool, rate, segTarget int64) firstSegment {
	if d < 0 || !video {
		// Audio-only streams cut at any frame; the normal rule stays.
		return firstSegment{}
	}
	return firstSegment{open: true, after: min(int64(d)*rate/int64(time.Second), segTarget)}
}

// cutAt is the shortest segment a keyframe cuts, given the normal one.
func (f *firstSegment) cutAt(normal int64) int64 {
	if f.open {
		return f.after
	}
	return normal
}

// maybeAsk requests the keyframe once the first segment, of segLen so far
// (the frame being written not counted), has reached f.after.
func (f *firstSegment) maybeAsk(segLen int64) {
	if !f.open || f.asked || segLen < f.after {
		return
	}
	f.asked = true
	if f.request != nil {
		f.request()
	}
}

// SetKeyframeRequest sets what the Transmuxer calls (on its own goroutine;
// it must not block) to ask the publisher for a keyframe for a short first
// segment (Settings.FirstSegment). Run uses the read stream's
// media.Stream.RequestKeyframe unless one was set. Call before the first
// frame.
func (m *Transmuxer) SetKeyframeRequest(fn func()) { m.first.request = fn }
