//go:build !nocodec

package codec

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// FFmpeg logs to stderr by default; the encoder's statistics (Qavg) and
// per-packet warnings are not ours to print.
func init() { astiav.SetLogLevel(astiav.LogLevelError) }

// Available reports whether this build has codec support.
const Available = true

// aacOptions are the private options of FFmpeg's native `aac` encoder, set
// through the options dictionary on Open. Measured in BenchmarkOpusToAAC
// (docs/BENCHMARKS.md, "Opus→AAC in the stage"):
//
//   - aac_coder=fast: FFmpeg 5.1 still defaults to the "twoloop" coder,
//     whose scalefactor search was ~80 % of the gateway's CPU at 50 streams.
//     FFmpeg's own change "aacenc: use the fast coder as the default"
//     (fcb681ac3edd, 2018) says twoloop sounds worse than fast at higher
//     bitrates and needs a lot more CPU; our 64k–128k are such bitrates.
//   - aac_ms=0: the M/S stereo decision is pathological when L=R (a mono
//     Opus source decoded to stereo: the fast coder took 2.5× twoloop's time
//     on a tone with M/S on); with M/S off a true stereo source costs a few
//     kb/s of efficiency, nothing audible at 128k. Mono sources get a mono
//     encoder anyway (see opusToAAC).
//   - aac_is=0, aac_pns=0: intensity stereo and perceptual noise
//     substitution are parametric tools for low bitrates; at ours they add
//     search time and, when they trigger, artefacts.
//   - aac_tns stays on (default): temporal noise shaping keeps transients
//     (speech onsets, clicks) from pre-echo and costs little.
var aacOptions = [][2]string{
	{"aac_coder", "fast"},
	{"aac_ms", "0"},
	{"aac_is", "0"},
	{"aac_pns", "0"},
}

// gapTolerance is how far (in samples) an Opus packet's timestamp may drift
// from where the samples before it end before the gap is filled with silence
// or the overlap is trimmed: 100 ms, what `aresample=async=1` did
// (min_hard_comp), so the AAC timeline behaves as it did with the graph.
// Ingest's timeline moves audio timestamps by a few tens of ms now and then
// (Sender Report sync, arrival jitter); a tighter tolerance answers each of
// those with a burst of silence or a cut. A single lost packet therefore
// shifts the audio by 20 ms instead of being filled; longer losses are.
const gapTolerance = AACSampleRate / 10

// opusToAAC decodes Opus with FFmpeg's native decoder, regroups the PCM into
// the encoder's 1024-sample frames in Go, and encodes AAC-LC with the native
// `aac` encoder.
//
// The decoder outputs the encoder's channel count: a mono transcoder decodes
// Opus to mono (a stereo packet is downmixed by the decoder), so a mono
// source is never encoded as an L=R stereo pair.
//
// No filter graph: the regrouping is a copy of ~1000 floats per channel
// per frame, and the gap filling that `aresample=async=1` did is a sample
// count against the input timestamps (queue), so the AAC timestamps stay on
// the stream's timeline. Per 20 ms packet this leaves one cgo call to send
// the packet, two to receive decoded frames and, about once per packet, the
// encoder's send/receive.
type opusToAAC struct {
	dec     *astiav.CodecContext
	enc     *astiav.CodecContext
	pkt     *astiav.Packet
	decoded *astiav.Frame
	eframe  *astiav.Frame // the encoder's input, one buffer reused
	out     *astiav.Packet
	format  AudioFormat
	size    int // encoder frame size (1024)
	ch      int

	// The Go-side FIFO: fifo[c][:n] are the samples not yet encoded, the
	// first of them at fifoPTS; next is where the queued input ends on the
	// input's timeline (the pts the next packet should have).
	fifo    [2][]float32
	n       int
	fifoPTS int64
	next    int64
	started bool

	outbuf []Packet // reused by Transcode; valid until the next call
	closed bool
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
	if s.Channels == 1 {
		layout = astiav.ChannelLayoutMono
	}
	t := &opusToAAC{
		pkt:     astiav.AllocPacket(),
		decoded: astiav.AllocFrame(),
		eframe:  astiav.AllocFrame(),
		out:     astiav.AllocPacket(),
		ch:      s.Channels,
	}
	fail := func(what string, err error) (AudioTranscoder, error) {
		_ = t.Close()
		return nil, fmt.Errorf("codec: opus→aac: %s: %w", what, err)
	}

	var err error
	if t.dec, err = openOpusDecoderLayout(layout); err != nil {
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
	opts := astiav.NewDictionary()
	defer opts.Free()
	for _, kv := range aacOptions {
		if err := opts.Set(kv[0], kv[1], astiav.NewDictionaryFlags()); err != nil {
			return fail("encoder option "+kv[0], err)
		}
	}
	if err := t.enc.Open(ec, opts); err != nil {
		return fail("open encoder", err)
	}
	// avcodec_open2 leaves the options it did not use in the dictionary: a
	// misspelt option would otherwise be ignored without a word.
	if e := opts.Get("", nil, astiav.NewDictionaryFlags(astiav.DictionaryFlagIgnoreSuffix)); e != nil {
		return fail("encoder option", fmt.Errorf("%s not known to FFmpeg's aac encoder", e.Key()))
	}
	t.size = t.enc.FrameSize()
	if t.size <= 0 {
		t.size = 1024
	}
	t.eframe.SetNbSamples(t.size)
	t.eframe.SetSampleFormat(astiav.SampleFormatFltp)
	t.eframe.SetChannelLayout(layout)
	t.eframe.SetSampleRate(AACSampleRate)
	if err := t.eframe.AllocBuffer(0); err != nil {
		return fail("encoder frame", err)
	}
	for c := 0; c < t.ch; c++ {
		t.fifo[c] = make([]float32, 0, t.size) // queue never fills it past one frame
	}

	t.format = AudioFormat{
		SampleRate: AACSampleRate,
		Channels:   s.Channels,
		Config:     append([]byte(nil), t.enc.ExtraData()...),
		// FFmpeg's aac encoder sets initial_padding to one frame; its packet
		// timestamps already start that much earlier than the input.
		Delay: t.size,
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
	return t.drainDecoder(t.outbuf[:0])
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
	if t.n > 0 {
		// The last frame is padded with silence (as asetnsamples did).
		if out, err = t.pushSilence(out, int64(t.size-t.n)); err != nil {
			return out, err
		}
	}
	_ = t.enc.SendFrame(nil)
	return t.drainEncoder(out)
}

func (t *opusToAAC) drainDecoder(out []Packet) ([]Packet, error) {
	for {
		err := t.dec.ReceiveFrame(t.decoded)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			t.outbuf = out
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("codec: opus decode: %w", err)
		}
		out, err = t.queue(out)
		t.decoded.Unref()
		if err != nil {
			return out, err
		}
	}
}

// queue appends the decoded frame to the FIFO at its timestamp, filling a
// gap before it with silence or dropping what overlaps samples already
// queued, and encodes every full frame.
func (t *opusToAAC) queue(out []Packet) ([]Packet, error) {
	n := t.decoded.NbSamples()
	if n <= 0 {
		return out, nil
	}
	pts := t.decoded.Pts()
	if pts == astiav.NoPtsValue {
		pts = t.next
	}
	if !t.started {
		t.started, t.next, t.fifoPTS = true, pts, pts
	}
	skip := 0
	var err error
	switch d := pts - t.next; {
	case d >= gapTolerance:
		if out, err = t.pushSilence(out, d); err != nil {
			return out, err
		}
	case d <= -gapTolerance:
		skip = int(min(-d, int64(n)))
	}
	in := [2][]float32{}
	for c := 0; c < t.ch; c++ {
		in[c] = unsafeFloats(plane(t.decoded, c, 4*n), n)
		if in[c] == nil {
			return out, errors.New("codec: opus decode: frame without samples")
		}
	}
	for i := skip; i < n; {
		k := min(n-i, t.size-t.n)
		for c := 0; c < t.ch; c++ {
			t.fifo[c] = append(t.fifo[c], in[c][i:i+k]...)
		}
		t.n += k
		i += k
		t.next += int64(k)
		if t.n == t.size {
			if out, err = t.encodeFrame(out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// pushSilence queues n samples of silence, encoding the frames it fills.
func (t *opusToAAC) pushSilence(out []Packet, n int64) ([]Packet, error) {
	var err error
	for n > 0 {
		k := int(min(n, int64(t.size-t.n)))
		for c := 0; c < t.ch; c++ {
			l := len(t.fifo[c])
			t.fifo[c] = t.fifo[c][:l+k]
			clear(t.fifo[c][l:])
		}
		t.n += k
		n -= int64(k)
		t.next += int64(k)
		if t.n == t.size {
			if out, err = t.encodeFrame(out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// encodeFrame sends the FIFO's full frame to the encoder and empties it.
func (t *opusToAAC) encodeFrame(out []Packet) ([]Packet, error) {
	if err := makeWritable(t.eframe); err != nil {
		return out, fmt.Errorf("codec: aac frame: %w", err)
	}
	for c := 0; c < t.ch; c++ {
		copy(unsafeFloats(plane(t.eframe, c, 4*t.size), t.size), t.fifo[c])
		t.fifo[c] = t.fifo[c][:0]
	}
	t.eframe.SetPts(t.fifoPTS)
	t.fifoPTS += int64(t.n)
	t.n = 0
	if err := t.enc.SendFrame(t.eframe); err != nil {
		return out, fmt.Errorf("codec: aac encode: %w", err)
	}
	return t.drainEncoder(out)
}

func (t *opusToAAC) drainEncoder(out []Packet) ([]Packet, error) {
	return receivePackets(t.enc, t.out, out, "aac")
}

func (t *opusToAAC) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	if t.dec != nil {
		t.dec.Free()
	}
	if t.enc != nil {
		t.enc.Free()
	}
	t.pkt.Free()
	t.decoded.Free()
	t.eframe.Free()
	t.out.Free()
	return nil
}

// openOpusDecoder opens libavcodec's Opus decoder for WebRTC's 48 kHz stereo
// Opus; every Opus transcoder starts with it. A non-nil context is returned
// only on success.
func openOpusDecoder() (*astiav.CodecContext, error) {
	return openOpusDecoderLayout(astiav.ChannelLayoutStereo)
}

// openOpusDecoderLayout opens the Opus decoder with the given output layout:
// mono downmixes stereo packets, stereo duplicates mono ones.
func openOpusDecoderLayout(layout astiav.ChannelLayout) (*astiav.CodecContext, error) {
	dc := astiav.FindDecoder(astiav.CodecIDOpus)
	if dc == nil {
		return nil, errors.New("FFmpeg has no Opus decoder")
	}
	dec := astiav.AllocCodecContext(dc)
	dec.SetSampleRate(AACSampleRate)
	dec.SetChannelLayout(layout)
	dec.SetTimeBase(astiav.NewRational(1, AACSampleRate))
	if err := dec.Open(dc, nil); err != nil {
		dec.Free()
		return nil, err
	}
	return dec, nil
}
