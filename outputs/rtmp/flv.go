package rtmp

import (
	"bytes"
	"errors"
	"math"

	flvtag "github.com/yutopp/go-flv/tag"

	"github.com/whipcast/whipcast/media"
)

// The FLV tag bodies sent as RTMP audio and video messages (Adobe FLV spec
// v10.1, E.4.2 AUDIODATA and E.4.3 VIDEODATA), built with go-flv's encoder.

// avcDecoderConfig builds the AVCDecoderConfigurationRecord (ISO/IEC
// 14496-15 5.3.3.1) from one SPS and one PPS.
func avcDecoderConfig(sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || len(pps) == 0 || len(sps) > math.MaxUint16 || len(pps) > math.MaxUint16 {
		return nil, errors.New("rtmp: SPS/PPS missing or malformed")
	}
	b := make([]byte, 0, 11+len(sps)+len(pps))
	b = append(b, 1, sps[1], sps[2], sps[3], 0xFF /* 4-byte NALU lengths */, 0xE1 /* one SPS */)
	b = append(b, byte(len(sps)>>8), byte(len(sps)))
	b = append(b, sps...)
	b = append(b, 1, byte(len(pps)>>8), byte(len(pps)))
	b = append(b, pps...)
	return b, nil
}

// videoSequenceHeader is the AVC sequence header tag body for cfg.
func videoSequenceHeader(cfg *media.Config) ([]byte, error) {
	rec, err := avcDecoderConfig(cfg.SPS, cfg.PPS)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = flvtag.EncodeVideoData(&buf, &flvtag.VideoData{
		FrameType:     flvtag.FrameTypeKeyFrame,
		CodecID:       flvtag.CodecIDAVC,
		AVCPacketType: flvtag.AVCPacketTypeSequenceHeader,
		Data:          bytes.NewReader(rec),
	})
	return buf.Bytes(), err
}

// videoFrame is the tag body of one AVCC access unit; cts is PTS-DTS in ms.
func videoFrame(data []byte, keyframe bool, cts int32) []byte {
	ft := flvtag.FrameTypeInterFrame
	if keyframe {
		ft = flvtag.FrameTypeKeyFrame
	}
	var buf bytes.Buffer
	buf.Grow(5 + len(data))
	_ = flvtag.EncodeVideoData(&buf, &flvtag.VideoData{
		FrameType:       ft,
		CodecID:         flvtag.CodecIDAVC,
		AVCPacketType:   flvtag.AVCPacketTypeNALU,
		CompositionTime: cts,
		Data:            bytes.NewReader(data),
	})
	return buf.Bytes()
}

// audioTag is the tag body of an AAC sequence header (seq true, data is the
// AudioSpecificConfig) or of one raw AAC frame. The FLV header fields are
// fixed for AAC (E.4.2.1: always 44 kHz, 16 bit, stereo); the real format
// is in the AudioSpecificConfig.
func audioTag(data []byte, seq bool) []byte {
	pt := flvtag.AACPacketTypeRaw
	if seq {
		pt = flvtag.AACPacketTypeSequenceHeader
	}
	var buf bytes.Buffer
	buf.Grow(2 + len(data))
	_ = flvtag.EncodeAudioData(&buf, &flvtag.AudioData{
		SoundFormat:   flvtag.SoundFormatAAC,
		SoundRate:     flvtag.SoundRate44kHz,
		SoundSize:     flvtag.SoundSize16Bit,
		SoundType:     flvtag.SoundTypeStereo,
		AACPacketType: pt,
		Data:          bytes.NewReader(data),
	})
	return buf.Bytes()
}

// metadata is the onMetaData object sent with @setDataFrame (FLV spec E.5).
func metadata(cfg *media.Config, audio *media.Track, audioKbps, frameRate float64) map[string]any {
	m := map[string]any{"encoder": "whipcast"}
	if cfg != nil {
		m["width"] = float64(cfg.Width)
		m["height"] = float64(cfg.Height)
		m["videocodecid"] = float64(flvtag.CodecIDAVC)
		if frameRate > 0 {
			m["framerate"] = frameRate
		}
	}
	if audio != nil {
		m["audiocodecid"] = float64(flvtag.SoundFormatAAC)
		if audio.Codec == media.CodecOpus {
			// E-RTMP "Enhancing onMetaData": an enhanced codec's id is its FOURCC.
			m["audiocodecid"] = float64(opusFourCCNumber)
		}
		m["audiosamplerate"] = float64(audio.ClockRate)
		m["audiosamplesize"] = 16.0
		if audio.Channels > 0 { // 0: not known yet (no AAC config seen)
			m["stereo"] = audio.Channels == 2
			m["audiochannels"] = float64(audio.Channels)
		}
		if audioKbps > 0 {
			m["audiodatarate"] = audioKbps
		}
	}
	return m
}
