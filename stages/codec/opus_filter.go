//go:build !nocodec

package codec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/asticode/go-astiav"
)

// NewOpusFilter makes an Opus → filter graph → Opus transcoder (48 kHz
// stereo, 20 ms frames, libopus), for audio filters such as gain. filter is
// a libavfilter audio graph with unlabelled ends or [in] and [out], e.g.
// "volume=1.5". It shares the Opus→AAC machinery: only the encoder and the
// graph differ.
func NewOpusFilter(filter string, bitrate int) (AudioTranscoder, error) {
	if bitrate == 0 {
		bitrate = 96000
	}
	if bitrate < 16000 || bitrate > 512000 {
		return nil, fmt.Errorf("%w: Opus bitrate %d is out of range 16k-512k", ErrBadSettings, bitrate)
	}
	t := &opusToAAC{pkt: astiav.AllocPacket(), decoded: astiav.AllocFrame(), fframe: astiav.AllocFrame(), out: astiav.AllocPacket()}
	fail := func(what string, err error) (AudioTranscoder, error) {
		_ = t.Close()
		return nil, fmt.Errorf("codec: opus filter: %s: %w", what, err)
	}
	var err error
	if t.dec, err = openOpusDecoder(); err != nil {
		return fail("opus decoder", err)
	}
	if t.enc, err = openOpusEncoder(bitrate); err != nil {
		return fail("encoder", err)
	}
	frameSize := t.enc.FrameSize()
	if frameSize <= 0 {
		frameSize = 960
	}
	t.graph = astiav.AllocFilterGraph()
	t.src, err = t.graph.NewFilterContext(astiav.FindFilterByName("abuffer"), "in", astiav.FilterArgs{
		"time_base":      "1/" + strconv.Itoa(AACSampleRate),
		"sample_rate":    strconv.Itoa(AACSampleRate),
		"sample_fmt":     astiav.SampleFormatFltp.Name(),
		"channel_layout": "stereo",
	})
	if err != nil {
		return fail("abuffer", err)
	}
	if t.sink, err = t.graph.NewFilterContext(astiav.FindFilterByName("abuffersink"), "out", nil); err != nil {
		return fail("abuffersink", err)
	}
	outputs := astiav.AllocFilterInOut()
	outputs.SetName("in")
	outputs.SetFilterContext(t.src)
	outputs.SetPadIdx(0)
	inputs := astiav.AllocFilterInOut()
	inputs.SetName("out")
	inputs.SetFilterContext(t.sink)
	inputs.SetPadIdx(0)
	tail := fmt.Sprintf("aresample=%d:async=1,aformat=sample_fmts=flt:sample_rates=%d:channel_layouts=stereo,asetnsamples=n=%d", AACSampleRate, AACSampleRate, frameSize)
	desc := filter + "," + tail
	switch {
	case filter == "":
		desc = tail
	case strings.Contains(filter, "[out]"):
		desc = strings.Replace(filter, "[out]", "[wc_a];[wc_a]"+tail+"[out]", 1)
	}
	err = t.graph.Parse(desc, inputs, outputs)
	inputs.Free()
	outputs.Free()
	if err != nil {
		return fail("parse filter graph", fmt.Errorf("%w: %w", ErrBadSettings, err))
	}
	if err := t.graph.Configure(); err != nil {
		return fail("configure filter graph", err)
	}
	t.format = AudioFormat{SampleRate: AACSampleRate, Channels: 2, Config: append([]byte(nil), t.enc.ExtraData()...)}
	return t, nil
}
