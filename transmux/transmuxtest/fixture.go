// Package transmuxtest loads the committed test media (testdata/av.h264 and
// testdata/av.ogg) as media.Frames, for tests of transmux and its consumers.
package transmuxtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/whipcast/whipcast/media"
)

// Fixture is the fixture's frames and tracks, in stream order (interleaved by
// time, video first on ties).
type Fixture struct {
	Video, Audio *media.Track
	VideoFrames  []*media.Frame
	AudioFrames  []*media.Frame
	// Frames is every frame interleaved by decode time.
	Frames []*media.Frame
}

// Tracks returns the fixture's tracks, video first.
func (f *Fixture) Tracks() []*media.Track { return []*media.Track{f.Video, f.Audio} }

// Load reads the H.264 Annex-B file (30 fps, DTS = i*3000) and, when oggPath
// is not empty, the Ogg/Opus file (one 20 ms packet per page). Wall times
// start at base.
func Load(h264Path, oggPath string, base time.Time) (*Fixture, error) {
	fx := &Fixture{
		Video: &media.Track{ID: 0, Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000},
		Audio: &media.Track{ID: 1, Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2},
	}
	vf, err := loadH264(h264Path, fx.Video, base)
	if err != nil {
		return nil, err
	}
	fx.VideoFrames = vf
	if oggPath != "" {
		af, err := loadOgg(oggPath, fx.Audio, base)
		if err != nil {
			return nil, err
		}
		fx.AudioFrames = af
	}
	i, j := 0, 0
	for i < len(fx.VideoFrames) || j < len(fx.AudioFrames) {
		if j >= len(fx.AudioFrames) || i < len(fx.VideoFrames) &&
			fx.VideoFrames[i].DTS*48000 <= fx.AudioFrames[j].DTS*90000 {
			fx.Frames = append(fx.Frames, fx.VideoFrames[i])
			i++
		} else {
			fx.Frames = append(fx.Frames, fx.AudioFrames[j])
			j++
		}
	}
	return fx, nil
}

func loadH264(path string, t *media.Track, base time.Time) ([]*media.Frame, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := h264reader.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var (
		frames   []*media.Frame
		cfg      *media.Config
		sps, pps []byte
		au       []byte
		key      bool
	)
	flush := func() {
		if len(au) == 0 {
			return
		}
		if key && sps != nil && pps != nil && (cfg == nil || !bytes.Equal(cfg.SPS, sps) || !bytes.Equal(cfg.PPS, pps)) {
			cfg = &media.Config{SPS: sps, PPS: pps, Width: 320, Height: 240}
		}
		dts := int64(len(frames)) * 3000
		frames = append(frames, &media.Frame{
			Track: t, DTS: dts, PTS: dts, Keyframe: key, Config: cfg, Data: au,
			Time: base.Add(time.Duration(dts) * time.Second / 90000),
		})
		au, key = nil, false
	}
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch nal.UnitType {
		case h264reader.NalUnitTypeSPS:
			flush()
			sps = append([]byte(nil), nal.Data...)
			continue
		case h264reader.NalUnitTypePPS:
			pps = append([]byte(nil), nal.Data...)
			continue
		case h264reader.NalUnitTypeAUD:
			flush()
			continue
		case h264reader.NalUnitTypeCodedSliceIdr, h264reader.NalUnitTypeCodedSliceNonIdr:
			// first_mb_in_slice == 0 (a leading 1 bit in ue(v)) starts a new picture.
			if len(nal.Data) > 1 && nal.Data[1]&0x80 != 0 {
				flush()
			}
			if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr {
				key = true
			}
		}
		au = binary.BigEndian.AppendUint32(au, uint32(len(nal.Data)))
		au = append(au, nal.Data...)
	}
	flush()
	if len(frames) == 0 {
		return nil, fmt.Errorf("transmuxtest: no frames in %s", path)
	}
	return frames, nil
}

func loadOgg(path string, t *media.Track, base time.Time) ([]*media.Frame, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r, _, err := oggreader.NewWith(fh)
	if err != nil {
		return nil, err
	}
	var frames []*media.Frame
	for {
		payload, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if bytes.HasPrefix(payload, []byte("OpusTags")) || len(payload) == 0 {
			continue
		}
		dts := int64(len(frames)) * 960
		frames = append(frames, &media.Frame{
			Track: t, DTS: dts, PTS: dts, Keyframe: true, Data: payload,
			Time: base.Add(time.Duration(dts) * time.Second / 48000),
		})
	}
	return frames, nil
}
