package bench

import "fmt"

// tagInfo is what the RTMP sink reads from the first bytes of an audio or
// video message body (an FLV tag body, E.4.2 / E.4.3 of the FLV spec, and
// the ExHeader forms of Enhanced RTMP v2).
type tagInfo struct {
	// codec names the codec: AVC, AAC, or the FourCC of an enhanced tag
	// (hvc1, av01, Opus, ...), or "video N" / "audio N" for another legacy
	// CodecID / SoundFormat.
	codec string
	// header is a sequence header (AVC/AAC config, E-RTMP SequenceStart) or
	// another non-frame message (end of sequence, metadata): it carries no
	// media time of its own.
	header bool
	// key is a video keyframe.
	key bool
}

// Legacy FLV values the sink names (FLV spec E.4.2.1, E.4.3.1).
const (
	flvCodecAVC     = 7
	flvSoundAAC     = 10
	flvSoundExHdr   = 9 // E-RTMP: an AudioPacketType and a FourCC follow
	flvVideoExHdr   = 0x80
	flvFrameKey     = 1
	exPacketSeq     = 0 // SequenceStart (audio and video)
	exPacketFrames  = 1 // CodedFrames
	exPacketFramesX = 3 // CodedFramesX (video: no composition time)
)

// parseVideoTag reads a video tag body; ok is false for one too short to
// name its codec.
func parseVideoTag(b []byte) (t tagInfo, ok bool) {
	if len(b) < 1 {
		return t, false
	}
	frameType := b[0] >> 4 & 0x07
	t.key = frameType == flvFrameKey
	if b[0]&flvVideoExHdr != 0 { // E-RTMP ExVideoTagHeader: [IsExHeader|FrameType|PacketType][FourCC]
		if len(b) < 5 {
			return t, false
		}
		pt := b[0] & 0x0F
		t.codec = string(b[1:5])
		t.header = pt != exPacketFrames && pt != exPacketFramesX
		return t, true
	}
	if len(b) < 2 {
		return t, false
	}
	if id := b[0] & 0x0F; id == flvCodecAVC {
		t.codec = "AVC"
	} else {
		t.codec = fmt.Sprintf("video %d", id)
	}
	// AVCPacketType (also HEVC's in the pre-E-RTMP extensions): 1 is a NALU.
	t.header = frameType == 5 || b[1] != 1 // 5: video info/command frame
	return t, true
}

// parseAudioTag reads an audio tag body; ok is false for one too short to
// name its codec.
func parseAudioTag(b []byte) (t tagInfo, ok bool) {
	if len(b) < 1 {
		return t, false
	}
	switch f := b[0] >> 4; f {
	case flvSoundExHdr: // ExAudioTagHeader: [SoundFormat 9|PacketType][FourCC]
		if len(b) < 5 {
			return t, false
		}
		t.codec = string(b[1:5])
		t.header = b[0]&0x0F != exPacketFrames
	case flvSoundAAC:
		if len(b) < 2 {
			return t, false
		}
		t.codec = "AAC"
		t.header = b[1] != 1 // AACPacketType 0 is the AudioSpecificConfig
	default:
		t.codec = fmt.Sprintf("audio %d", f)
	}
	return t, true
}
