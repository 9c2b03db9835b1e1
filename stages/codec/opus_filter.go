//go:build !nocodec

package codec

import (
	"errors"
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
//
// The graph keeps its own decoder → graph → encoder loop (opusGraph):
// unlike Opus→AAC, a user's filter may change the sample count.
func NewOpusFilter(filter string, bitrate int) (AudioTranscoder, error) {
	if bitrate == 0 {
		bitrate = 96000
	}
	if bitrate < 16000 || bitrate > 512000 {
		return nil, fmt.Errorf("%w: Opus bitrate %d is out of range 16k-512k", ErrBadSettings, bitrate)
	}
	t := &opusGraph{pkt: astiav.AllocPacket(), decoded: astiav.AllocFrame(), fframe: astiav.AllocFrame(), out: astiav.AllocPacket()}
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

// opusGraph decodes Opus, runs the PCM through a filter graph ending in
// `aresample=async=1 → aformat → asetnsamples` (gaps filled with silence,
// frames of the encoder's size) and encodes the result.
type opusGraph struct {
	dec     *astiav.CodecContext
	enc     *astiav.CodecContext
	graph   *astiav.FilterGraph
	src     *astiav.FilterContext
	sink    *astiav.FilterContext
	pkt     *astiav.Packet
	decoded *astiav.Frame
	fframe  *astiav.Frame
	out     *astiav.Packet
	format  AudioFormat
	closed  bool
}

func (t *opusGraph) Format() AudioFormat { return t.format }

func (t *opusGraph) Transcode(data []byte, pts int64) ([]Packet, error) {
	if t.closed {
		return nil, errors.New("codec: transcoder closed")
	}
	if err := t.pkt.FromData(data); err != nil {
		return nil, fmt.Errorf("codec: packet: %w", err)
	}
	t.pkt.SetPts(pts)
	t.pkt.SetDts(pts)
	err := t.dec.SendPacket(t.pkt)
	t.pkt.Unref()
	if err != nil {
		// A corrupt packet is skipped; the gap is filled with silence.
		return nil, nil
	}
	return t.drainDecoder(nil)
}

func (t *opusGraph) Flush() ([]Packet, error) {
	if t.closed {
		return nil, nil
	}
	_ = t.dec.SendPacket(nil)
	out, err := t.drainDecoder(nil)
	if err != nil {
		return out, err
	}
	if err := t.src.BuffersrcAddFrame(nil, astiav.NewBuffersrcFlags()); err != nil && !errors.Is(err, astiav.ErrEof) {
		return out, fmt.Errorf("codec: flush filter: %w", err)
	}
	out, err = t.drainFilter(out)
	if err != nil {
		return out, err
	}
	_ = t.enc.SendFrame(nil)
	return t.drainEncoder(out)
}

func (t *opusGraph) drainDecoder(out []Packet) ([]Packet, error) {
	for {
		err := t.dec.ReceiveFrame(t.decoded)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("codec: opus decode: %w", err)
		}
		err = t.src.BuffersrcAddFrame(t.decoded, astiav.NewBuffersrcFlags())
		t.decoded.Unref()
		if err != nil {
			return out, fmt.Errorf("codec: filter input: %w", err)
		}
		if out, err = t.drainFilter(out); err != nil {
			return out, err
		}
	}
}

func (t *opusGraph) drainFilter(out []Packet) ([]Packet, error) {
	for {
		err := t.sink.BuffersinkGetFrame(t.fframe, astiav.NewBuffersinkFlags())
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("codec: filter output: %w", err)
		}
		err = t.enc.SendFrame(t.fframe)
		t.fframe.Unref()
		if err != nil {
			return out, fmt.Errorf("codec: encode: %w", err)
		}
		if out, err = t.drainEncoder(out); err != nil {
			return out, err
		}
	}
}

func (t *opusGraph) drainEncoder(out []Packet) ([]Packet, error) {
	return receivePackets(t.enc, t.out, out, "filter")
}

func (t *opusGraph) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	if t.graph != nil {
		t.graph.Free()
	}
	if t.dec != nil {
		t.dec.Free()
	}
	if t.enc != nil {
		t.enc.Free()
	}
	t.pkt.Free()
	t.decoded.Free()
	t.fframe.Free()
	t.out.Free()
	return nil
}
