package packager

import (
	"math"
	"strconv"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// Playlists are rendered by hand rather than with gohlslib's playlist.Media:
// that type has no HOLD-BACK attribute and only one EXT-X-MAP for the whole
// playlist, while an init change needs a new EXT-X-MAP after its
// EXT-X-DISCONTINUITY (RFC 8216bis 4.4.4.5). Tests parse the output with
// gohlslib to keep it honest. A playlist is rendered once per change and
// the bytes are shared by every request until the next change.

// hlsVersion is the EXT-X-VERSION our tags need: EXT-X-PART, preload hints
// and blocking reload are defined for version 9 (RFC 8216bis 8, LL-HLS).
const hlsVersion = "9"

// hlsVersionPlain is the EXT-X-VERSION of a playlist without LL-HLS tags:
// EXT-X-MAP in a playlist that is not I-frames only needs 6, fractional
// EXTINF 3 (RFC 8216bis 8).
const hlsVersionPlain = "6"

// partSegments is how many complete segments keep their EXT-X-PART lines:
// with the segment in progress that spans about three target durations, as
// RFC 8216bis 4.4.4.9 asks.
const partSegments = 2

const pdtLayout = "2006-01-02T15:04:05.000Z07:00"

// targetDuration is the stream-wide EXT-X-TARGETDURATION: every EXTINF,
// rounded, must be at most this (RFC 8216bis 4.4.3.1). Called with s.mu held.
func (s *hlsStream) targetDuration() int {
	td := int(math.Round(s.h.set.tm.SegmentTarget.Seconds()))
	return max(td, int(math.Round(s.maxSegDur)), 1)
}

func appendSeconds(b []byte, d float64) []byte {
	return strconv.AppendFloat(b, d, 'f', 5, 64)
}

// renderMedia appends t's media playlist to b: LL-HLS, or with s.plain a
// playlist of complete segments only. Called with s.mu held.
func (s *hlsStream) renderMedia(b []byte, t *hlsTrack) []byte {
	td := s.targetDuration()
	pt := s.h.set.tm.PartTarget.Seconds()
	ll := !s.plain
	if ll {
		b = append(b, "#EXTM3U\n#EXT-X-VERSION:"+hlsVersion+"\n#EXT-X-TARGETDURATION:"...)
	} else {
		b = append(b, "#EXTM3U\n#EXT-X-VERSION:"+hlsVersionPlain+"\n#EXT-X-TARGETDURATION:"...)
	}
	b = strconv.AppendInt(b, int64(td), 10)
	if ll {
		b = append(b, "\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK="...)
		b = appendSeconds(b, 3*pt)
		b = append(b, ",HOLD-BACK="...)
		b = appendSeconds(b, float64(3*td))
		b = append(b, "\n#EXT-X-PART-INF:PART-TARGET="...)
		b = appendSeconds(b, pt)
	}
	b = append(b, "\n#EXT-X-MEDIA-SEQUENCE:"...)
	first := t.cur
	if len(t.segs) > 0 {
		first = t.segs[0].MSN
	}
	b = strconv.AppendUint(b, first, 10)
	b = append(b, '\n')
	if t.discSeq > 0 {
		b = append(b, "#EXT-X-DISCONTINUITY-SEQUENCE:"...)
		b = strconv.AppendInt(b, int64(t.discSeq), 10)
		b = append(b, '\n')
	}
	var prev *transmux.Init
	for i, seg := range t.segs {
		b = s.appendSegmentHead(b, t, seg.MSN, seg.Init, &prev, seg.Discontinuity, seg.Time)
		if ll && i >= len(t.segs)-partSegments {
			for _, p := range seg.Parts {
				b = s.appendPart(b, t, p)
			}
		}
		if seg.Gap() {
			b = append(b, "#EXT-X-GAP\n"...)
		}
		b = append(b, "#EXTINF:"...)
		b = appendSeconds(b, seg.Seconds())
		b = append(b, ",\n"...)
		if s.names != nil {
			b = append(b, s.names.SegmentName(seg)...)
		} else {
			b = appendSegName(b, t.name, s.epoch, seg.MSN)
		}
		b = append(b, '\n')
	}
	if ll && len(t.parts) > 0 {
		// No date: the previous segment's date and durations place it.
		// Except after a discontinuity, where they do not: hls.js aligns
		// the audio and video playlists by date there, and without one it
		// waited for the segment to complete (a stall of a segment at
		// every resolution change).
		p0 := t.parts[0]
		var when time.Time
		if p0.Discontinuity {
			when = p0.Time
		}
		b = s.appendSegmentHead(b, t, t.cur, p0.Init, &prev, p0.Discontinuity, when)
		for _, p := range t.parts {
			b = s.appendPart(b, t, p)
		}
	}
	if s.ended {
		return append(b, "#EXT-X-ENDLIST\n"...)
	}
	if !ll {
		return b
	}
	b = append(b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""...)
	b = appendPartName(b, t.name, s.epoch, t.cur, len(t.parts))
	return append(b, "\"\n"...)
}

// appendSegmentHead writes the tags that precede a segment's parts and
// EXTINF: discontinuity, a map when the init changes, the wall-clock date.
func (s *hlsStream) appendSegmentHead(b []byte, t *hlsTrack, msn uint64, in *transmux.Init, prev **transmux.Init, disc bool, when time.Time) []byte {
	// The tag stays on a discontinuity that is first in the window (only
	// the stream's very first segment goes without): discSeq counts it only
	// once it has left, and a segment's discontinuity sequence number must
	// not change between reloads (RFC 8216bis 6.2.2; hls.js fails with
	// "discontinuity sequence mismatch").
	if disc && (*prev != nil || msn > 0) {
		b = append(b, "#EXT-X-DISCONTINUITY\n"...)
	}
	if in != *prev {
		b = append(b, "#EXT-X-MAP:URI=\""...)
		if s.names != nil {
			b = append(b, s.names.InitName(in)...)
		} else {
			b = append(b, initName(t.name, s.epoch, in.Version)...)
		}
		b = append(b, "\"\n"...)
		*prev = in
	}
	if !when.IsZero() {
		b = append(b, "#EXT-X-PROGRAM-DATE-TIME:"...)
		b = when.UTC().AppendFormat(b, pdtLayout)
		b = append(b, '\n')
	}
	return b
}

func (s *hlsStream) appendPart(b []byte, t *hlsTrack, p *transmux.Part) []byte {
	b = append(b, "#EXT-X-PART:DURATION="...)
	b = appendSeconds(b, p.Seconds())
	b = append(b, ",URI=\""...)
	b = appendPartName(b, t.name, s.epoch, p.MSN, p.Index)
	b = append(b, '"')
	if p.Independent {
		b = append(b, ",INDEPENDENT=YES"...)
	}
	return append(b, '\n')
}

// renderMultivariant appends the multivariant playlist: one variant with the
// video track, audio tracks as an EXT-X-MEDIA group (RFC 8216bis 4.4.6.1).
// An audio-only stream gets one audio variant. Called with s.mu held.
func (s *hlsStream) renderMultivariant(b []byte) []byte {
	var video *hlsTrack
	var audio []*hlsTrack
	bw := 0.0
	for _, t := range s.tracks {
		if t.init == nil {
			continue
		}
		if t.kind == media.KindVideo && video == nil {
			video = t
			bw += t.peakBitrate()
		} else if t.kind == media.KindAudio {
			if len(audio) == 0 {
				bw += t.peakBitrate()
			}
			audio = append(audio, t)
		}
	}
	if video == nil && len(audio) == 0 {
		return nil
	}
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:"+hlsVersion+"\n#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	if video != nil {
		for i, a := range audio {
			b = append(b, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="`...)
			b = append(b, a.name...)
			b = append(b, `",AUTOSELECT=YES,DEFAULT=`...)
			if i == 0 {
				b = append(b, "YES"...)
			} else {
				b = append(b, "NO"...)
			}
			b = append(b, `,CHANNELS="`...)
			b = strconv.AppendInt(b, int64(a.init.Channels), 10)
			b = append(b, `",URI="`...)
			b = append(b, a.name...)
			b = append(b, ".m3u8\"\n"...)
		}
	}
	b = append(b, "#EXT-X-STREAM-INF:BANDWIDTH="...)
	b = strconv.AppendInt(b, int64(math.Ceil(max(bw, 1))), 10)
	b = append(b, `,CODECS="`...)
	main := video
	if video != nil {
		b = append(b, video.init.Codec...)
		if len(audio) > 0 {
			b = append(b, ',')
			b = append(b, audio[0].init.Codec...)
		}
		b = append(b, `",RESOLUTION=`...)
		b = strconv.AppendInt(b, int64(video.init.Width), 10)
		b = append(b, 'x')
		b = strconv.AppendInt(b, int64(video.init.Height), 10)
		if len(audio) > 0 {
			b = append(b, `,AUDIO="audio"`...)
		}
		// RFC 8216bis 4.4.6.2: without the attribute a player may look for
		// CEA-608/708 captions in the video, and some wait for a whole
		// segment to do so; there are none.
		b = append(b, `,CLOSED-CAPTIONS=NONE`...)
	} else {
		main = audio[0]
		b = append(b, main.init.Codec...)
		b = append(b, '"')
	}
	b = append(b, '\n')
	b = append(b, main.name...)
	return append(b, ".m3u8\n"...)
}

// peakBitrate is the highest segment bitrate in the window, bits/s.
func (t *hlsTrack) peakBitrate() float64 {
	peak := 0.0
	for _, seg := range t.segs {
		if d := seg.Seconds(); d > 0 {
			peak = max(peak, float64(seg.Size)*8/d)
		}
	}
	return peak
}
