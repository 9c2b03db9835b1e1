package ingest

import (
	"encoding/binary"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/media"
)

// rtpMTU is the largest RTP payload sent to viewers: it leaves room for the
// RTP, SRTP, UDP and IP headers inside a 1280-byte IPv6 minimum MTU path.
const rtpMTU = 1160

// forwarder turns one stream's Frames back into RTP for a WHEP viewer (the
// "from stream" adapter of WebRTC): H.264 AVCC access units become Annex-B
// with SPS/PPS in front of every keyframe, packetized with pion's H.264
// payloader (RFC 6184: single NAL, STAP-A, FU-A); Opus packets go one per RTP
// packet (RFC 7587). RTP timestamps are the frames' PTS, so a skip to the
// next keyframe leaves a timestamp gap, not a clock jump. Used by one
// goroutine.
type forwarder struct {
	video, audio *webrtc.TrackLocalStaticRTP
	// waitKey drops every frame until the next video keyframe: at the start
	// and after falling behind, so the viewer never gets half a GOP.
	waitKey bool

	h264             codecs.H264Payloader
	vSeq, aSeq       uint16
	annexB           []byte
	vFrames, aFrames uint64
	skipped          uint64
}

var startCode = []byte{0, 0, 0, 1}

// write sends f to its track; frames of tracks the viewer does not receive
// are ignored.
func (fw *forwarder) write(f *media.Frame) {
	if f.Track == nil {
		return
	}
	switch f.Track.Kind {
	case media.KindVideo:
		if fw.video == nil || f.Track.Codec != media.CodecH264 {
			return
		}
		if fw.waitKey {
			if !f.Keyframe || f.Config == nil {
				fw.skipped++
				return
			}
			fw.waitKey = false
		}
		fw.writeH264(f)
	case media.KindAudio:
		if fw.audio == nil || f.Track.Codec != media.CodecOpus {
			return
		}
		if fw.waitKey {
			fw.skipped++
			return
		}
		fw.aSeq++
		fw.aFrames++
		_ = fw.audio.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: fw.aSeq, Timestamp: uint32(f.PTS)},
			Payload: f.Data,
		})
	}
}

// annexB appends f's access unit to dst in Annex-B form, with its SPS and
// PPS in front when it is a keyframe, so a viewer can start decoding at any
// keyframe.
func annexB(dst []byte, f *media.Frame) []byte {
	if f.Keyframe && f.Config != nil && len(f.Config.SPS) > 0 && len(f.Config.PPS) > 0 {
		dst = append(append(dst, startCode...), f.Config.SPS...)
		dst = append(append(dst, startCode...), f.Config.PPS...)
	}
	for d := f.Data; len(d) >= 4; {
		n := int(binary.BigEndian.Uint32(d))
		d = d[4:]
		if n <= 0 || n > len(d) {
			break // malformed AVCC: send what was whole
		}
		dst = append(append(dst, startCode...), d[:n]...)
		d = d[n:]
	}
	return dst
}

func (fw *forwarder) writeH264(f *media.Frame) {
	b := annexB(fw.annexB[:0], f)
	fw.annexB = b
	payloads := fw.h264.Payload(rtpMTU, b)
	if len(payloads) == 0 {
		return
	}
	fw.vFrames++
	ts := uint32(f.PTS)
	for i, p := range payloads {
		fw.vSeq++
		_ = fw.video.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, Marker: i == len(payloads)-1, SequenceNumber: fw.vSeq, Timestamp: ts},
			Payload: p,
		})
	}
}
