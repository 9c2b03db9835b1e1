package rtmp

import "encoding/binary"

// Enhanced RTMP (E-RTMP v2, veovera/enhanced-rtmp, docs/enhanced/
// enhanced-rtmp-v2.md, status v2-2024-05-15-a1) audio: section "Enhanced
// Audio", tables "Extended AudioTagHeader" (ExAudioTagHeader) and
// "ExAudioTagBody".
//
// Only the audio side is enhanced here. H.264 video stays a legacy AVC tag
// (E.4.3.1): every E-RTMP server reads it, and E-RTMP keeps legacy tags valid
// next to enhanced ones. HEVC, AV1 and VP9 (FourCC hvc1, av01, vp09) would go
// as ExVideoTagHeader, but ingest negotiates H.264 only today: those
// passthrough paths wait for ingest support.

// soundFormatExHeader is SoundFormat.ExHeader (9): the low nibble of the
// first byte is then an AudioPacketType, not rate/size/type, and a FOURCC
// follows ("Extended AudioTagHeader").
const soundFormatExHeader = 9

// AudioPacketType values ("ExAudioTagHeader Section").
const (
	audioPacketSequenceStart = 0
	audioPacketCodedFrames   = 1
)

// fourCCOpus is AudioFourCc.Opus, makeFourCc('Opus').
var fourCCOpus = [4]byte{'O', 'p', 'u', 's'}

// opusFourCCNumber is the FOURCC as a number: the onMetaData audiocodecid of
// an enhanced codec ("Enhancing onMetaData").
const opusFourCCNumber = uint32('O')<<24 | uint32('p')<<16 | uint32('u')<<8 | uint32('s')

// opusPreSkip is the OpusHead pre-skip for WebRTC Opus: 312 samples at
// 48 kHz, libopus's lookahead, the value our CMAF dOps carries too.
const opusPreSkip = 312

// exAudioTag is the tag body of one enhanced audio message: the
// ExAudioTagHeader (SoundFormat.ExHeader | packetType, FOURCC) and the body.
func exAudioTag(packetType byte, fourCC [4]byte, body []byte) []byte {
	b := make([]byte, 0, 5+len(body))
	b = append(b, soundFormatExHeader<<4|packetType&0x0F)
	b = append(b, fourCC[:]...)
	return append(b, body...)
}

// opusHead is the Opus identification header (RFC 7845 5.1), which E-RTMP
// sends as the Opus SequenceStart body ("ExAudioTagBody": OpusSequenceHeader).
// Channel mapping family 0: mono or stereo, one stream, as WebRTC sends.
func opusHead(channels int) []byte {
	if channels < 1 || channels > 2 {
		channels = 2
	}
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1 // version
	b[9] = byte(channels)
	binary.LittleEndian.PutUint16(b[10:], opusPreSkip)
	binary.LittleEndian.PutUint32(b[12:], 48000) // input sample rate (informational)
	// b[16:18] output gain 0 dB, b[18] mapping family 0.
	return b
}

// opusSequenceStart is the tag body that announces Opus to the server.
func opusSequenceStart(channels int) []byte {
	return exAudioTag(audioPacketSequenceStart, fourCCOpus, opusHead(channels))
}

// opusFrame is the tag body of one Opus packet ("ExAudioTagBody":
// OpusCodedData, one packet as the encoder produced it).
func opusFrame(packet []byte) []byte {
	return exAudioTag(audioPacketCodedFrames, fourCCOpus, packet)
}
