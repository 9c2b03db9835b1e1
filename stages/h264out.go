package stages

import (
	"bytes"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
)

// H264Out turns an encoder's Annex-B access units into the frames of a
// media.Stream: AVCC payloads without parameter sets or delimiters, a
// *media.Config that changes only when the SPS or PPS does, keyframes marked,
// DTS strictly increasing. It is used by the stream's one writer goroutine;
// every stage that encodes video (filters, composites) publishes through it.
type H264Out struct {
	Out   *media.Stream
	Track *media.Track
	// Discontinuity, when set, marks the next keyframe written
	// Frame.Discontinuity (the source's publisher reconnected) and is then
	// cleared; the stage asks its encoder for that keyframe.
	Discontinuity bool

	cfg      *media.Config
	sps, pps []byte
	wrote    bool
	lastDTS  int64
}

// Write publishes p with capture time t. Access units before the first
// parameter sets, with a DTS that does not increase, or that do not parse
// are skipped; the error says why, for a debug log.
func (w *H264Out) Write(p codec.VideoPacket, t time.Time) error {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(p.Data); err != nil {
		return fmt.Errorf("encoder output: %w", err)
	}
	keep := make([][]byte, 0, len(nalus))
	var sps, pps []byte
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSEI:
		default:
			keep = append(keep, n)
		}
	}
	if sps != nil && pps != nil && (!bytes.Equal(sps, w.sps) || !bytes.Equal(pps, w.pps)) {
		var s h264.SPS
		if err := s.Unmarshal(sps); err != nil {
			return fmt.Errorf("encoder SPS: %w", err)
		}
		w.sps, w.pps = bytes.Clone(sps), bytes.Clone(pps)
		w.cfg = &media.Config{SPS: w.sps, PPS: w.pps, Width: s.Width(), Height: s.Height()}
	}
	if w.cfg == nil || len(keep) == 0 || (w.wrote && p.DTS <= w.lastDTS) {
		return nil
	}
	data, err := h264.AVCC(keep).Marshal()
	if err != nil {
		return fmt.Errorf("encoder output: %w", err)
	}
	w.wrote, w.lastDTS = true, p.DTS
	disc := w.Discontinuity && p.Keyframe
	if disc {
		w.Discontinuity = false
	}
	w.Out.Write(&media.Frame{Track: w.Track, DTS: p.DTS, PTS: p.PTS, Keyframe: p.Keyframe, Config: w.cfg, Data: data, Time: t, Discontinuity: disc})
	return nil
}

// AnnexB appends f's H.264 access unit to dst[:0] in Annex-B form, the
// parameter sets in front of a keyframe, as decoders take it: the inverse of
// what ingest and H264Out store.
func AnnexB(dst []byte, f *media.Frame) ([]byte, error) {
	var avcc h264.AVCC
	if err := avcc.Unmarshal(f.Data); err != nil {
		return dst[:0], err
	}
	dst = dst[:0]
	if f.Keyframe && f.Config != nil {
		dst = append(append(dst, 0, 0, 0, 1), f.Config.SPS...)
		dst = append(append(dst, 0, 0, 0, 1), f.Config.PPS...)
	}
	for _, n := range avcc {
		dst = append(append(dst, 0, 0, 0, 1), n...)
	}
	return dst, nil
}
