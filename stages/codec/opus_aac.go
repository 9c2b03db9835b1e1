//go:build !nocodec

package codec

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// FFmpeg logs to stderr by default; the encoder's statistics (Qavg) and
// per-packet warnings are not ours to print.
func init() { astiav.SetLogLevel(astiav.LogLevelError) }

// Available reports whether this build has codec support.
const Available = true

// opusToAAC decodes Opus with FFmpeg's native decoder, regroups the PCM into
// the encoder's 1024-sample frames with a filter graph (astiav v0.16.0 has no
// swresample or audio FIFO wrapper), and encodes AAC-LC with the native `aac`
// encoder.
//
// Graph: abuffer → aresample=async=1 → aformat → asetnsamples=1024 → abuffersink.
// aresample's async=1 fills gaps (lost packets, DTX) with silence and trims
// overlaps, so the sample count keeps following the input timestamps and the
// AAC timestamps stay on the stream's timeline.
type opusToAAC struct {
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

// NewOpusToAAC makes an Opus (48 kHz) → AAC-LC 48 kHz transcoder.
func NewOpusToAAC(s AACSettings) (AudioTranscoder, error) {
	if s.Bitrate == 0 {
		s.Bitrate = DefaultAACBitrate
	}
	if s.Channels == 0 {
		s.Channels = 2
	}
	if s.Bitrate < 16000 || s.Bitrate > 512000 {
		return nil, fmt.Errorf("%w: AAC bitrate %d is out of range 16k-512k", ErrBadSettings, s.Bitrate)
	}
	if s.Channels != 1 && s.Channels != 2 {
		return nil, fmt.Errorf("%w: %d channels (1 or 2 supported)", ErrBadSettings, s.Channels)
	}
	layout := astiav.ChannelLayoutStereo
	layoutName := "stereo"
	if s.Channels == 1 {
		layout, layoutName = astiav.ChannelLayoutMono, "mono"
	}
	t := &opusToAAC{
		pkt:     astiav.AllocPacket(),
		decoded: astiav.AllocFrame(),
		fframe:  astiav.AllocFrame(),
		out:     astiav.AllocPacket(),
	}
	fail := func(what string, err error) (AudioTranscoder, error) {
		_ = t.Close()
		return nil, fmt.Errorf("codec: opus→aac: %s: %w", what, err)
	}

	var err error
	if t.dec, err = openOpusDecoder(); err != nil {
		return fail("opus decoder", err)
	}

	ec := astiav.FindEncoderByName("aac")
	if ec == nil {
		return fail("find encoder", errors.New("FFmpeg has no native aac encoder"))
	}
	t.enc = astiav.AllocCodecContext(ec)
	t.enc.SetSampleFormat(astiav.SampleFormatFltp)
	t.enc.SetSampleRate(AACSampleRate)
	t.enc.SetChannelLayout(layout)
	t.enc.SetBitRate(int64(s.Bitrate))
	t.enc.SetProfile(astiav.ProfileAacLow)
	t.enc.SetTimeBase(astiav.NewRational(1, AACSampleRate))
	// Global header: the AudioSpecificConfig goes to extradata (for the FLV
	// sequence header and the MP4 esds) instead of ADTS in every frame.
	t.enc.SetFlags(t.enc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	if err := t.enc.Open(ec, nil); err != nil {
		return fail("open encoder", err)
	}
	frameSize := t.enc.FrameSize()
	if frameSize <= 0 {
		frameSize = 1024
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
	t.sink, err = t.graph.NewFilterContext(astiav.FindFilterByName("abuffersink"), "out", nil)
	if err != nil {
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
	desc := fmt.Sprintf("aresample=%d:async=1,aformat=sample_fmts=fltp:sample_rates=%d:channel_layouts=%s,asetnsamples=n=%d",
		AACSampleRate, AACSampleRate, layoutName, frameSize)
	err = t.graph.Parse(desc, inputs, outputs)
	inputs.Free()
	outputs.Free()
	if err != nil {
		return fail("parse filter graph", err)
	}
	if err := t.graph.Configure(); err != nil {
		return fail("configure filter graph", err)
	}

	t.format = AudioFormat{
		SampleRate: AACSampleRate,
		Channels:   s.Channels,
		Config:     append([]byte(nil), t.enc.ExtraData()...),
		// FFmpeg's aac encoder sets initial_padding to one frame; its packet
		// timestamps already start that much earlier than the input.
		Delay: frameSize,
	}
	if len(t.format.Config) < 2 {
		return fail("encoder", errors.New("no AudioSpecificConfig in extradata"))
	}
	return t, nil
}

func (t *opusToAAC) Format() AudioFormat { return t.format }

func (t *opusToAAC) Transcode(data []byte, pts int64) ([]Packet, error) {
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

func (t *opusToAAC) Flush() ([]Packet, error) {
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

func (t *opusToAAC) drainDecoder(out []Packet) ([]Packet, error) {
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

func (t *opusToAAC) drainFilter(out []Packet) ([]Packet, error) {
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
			return out, fmt.Errorf("codec: aac encode: %w", err)
		}
		if out, err = t.drainEncoder(out); err != nil {
			return out, err
		}
	}
}

func (t *opusToAAC) drainEncoder(out []Packet) ([]Packet, error) {
	for {
		err := t.enc.ReceivePacket(t.out)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("codec: aac encode: %w", err)
		}
		out = append(out, Packet{
			Data:     append([]byte(nil), t.out.Data()...),
			PTS:      t.out.Pts(),
			Duration: t.out.Duration(),
		})
		t.out.Unref()
	}
}

func (t *opusToAAC) Close() error {
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

// openOpusDecoder opens libavcodec's Opus decoder for WebRTC's 48 kHz stereo
// Opus; every Opus transcoder starts with it. A non-nil context is returned
// only on success.
func openOpusDecoder() (*astiav.CodecContext, error) {
	dc := astiav.FindDecoder(astiav.CodecIDOpus)
	if dc == nil {
		return nil, errors.New("FFmpeg has no Opus decoder")
	}
	dec := astiav.AllocCodecContext(dc)
	dec.SetSampleRate(AACSampleRate)
	dec.SetChannelLayout(astiav.ChannelLayoutStereo)
	dec.SetTimeBase(astiav.NewRational(1, AACSampleRate))
	if err := dec.Open(dc, nil); err != nil {
		dec.Free()
		return nil, err
	}
	return dec, nil
}
