//go:build !nocodec

package codec

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/asticode/go-astiav"
)

// fitDecoder is the FitDecoder: FFmpeg's H.264 decoder, then swscale
// (bilinear) straight from the decoder's frame to the fitted size, then one
// copy into Go memory of the small picture.
type fitDecoder struct {
	d      *h264Decoder
	sws    *astiav.SoftwareScaleContext
	scaled *astiav.Frame
	// the scaler's source and destination sizes and format
	sw, sh, dw, dh int
	sf             astiav.PixelFormat
}

// NewFitDecoder makes an H.264 decoder whose pictures are scaled to fit a box.
func NewFitDecoder() (FitDecoder, error) {
	d, err := newH264Decoder()
	if err != nil {
		return nil, err
	}
	return &fitDecoder{d: d, scaled: astiav.AllocFrame()}, nil
}

func (f *fitDecoder) Decode(data []byte, pts int64, boxW, boxH int) ([]*Picture, error) {
	var out []*Picture
	err := f.d.send(data, pts, func(fr *astiav.Frame) error {
		w, h := fr.Width(), fr.Height()
		dw, dh := Fit(w, h, boxW, boxH)
		if f.sws == nil || w != f.sw || h != f.sh || dw != f.dw || dh != f.dh || fr.PixelFormat() != f.sf {
			if f.sws != nil {
				f.sws.Free()
				f.sws = nil
			}
			s, err := astiav.CreateSoftwareScaleContext(w, h, fr.PixelFormat(), dw, dh, astiav.PixelFormatYuv420P,
				astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
			if err != nil {
				return fmt.Errorf("codec: scaler %dx%d→%dx%d: %w", w, h, dw, dh, err)
			}
			f.sws, f.sw, f.sh, f.dw, f.dh, f.sf = s, w, h, dw, dh, fr.PixelFormat()
		}
		f.scaled.Unref()
		f.scaled.SetWidth(dw)
		f.scaled.SetHeight(dh)
		f.scaled.SetPixelFormat(astiav.PixelFormatYuv420P)
		if err := f.scaled.AllocBuffer(0); err != nil {
			return fmt.Errorf("codec: scaled frame: %w", err)
		}
		if err := f.sws.ScaleFrame(fr, f.scaled); err != nil {
			return fmt.Errorf("codec: scale: %w", err)
		}
		f.scaled.SetPts(fr.Pts())
		p, err := pictureFromFrame(f.scaled, nil)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

func (f *fitDecoder) Close() error {
	if f.d == nil {
		return nil
	}
	f.d.close()
	f.d = nil
	if f.sws != nil {
		f.sws.Free()
	}
	f.scaled.Free()
	return nil
}

// videoEncoder is the VideoEncoder: libx264 with the same options as the
// filter stages' encoder.
type videoEncoder struct {
	s       VideoSettings
	enc     *astiav.CodecContext
	frame   *astiav.Frame
	out     *astiav.Packet
	w, h    int
	lastKey int64
	anyKey  bool
	force   atomic.Bool
	closed  bool
}

// NewVideoEncoder makes an H.264 encoder for pictures of w×h at fps.
func NewVideoEncoder(s VideoSettings, w, h, fps int) (VideoEncoder, error) {
	if err := s.defaults(); err != nil {
		return nil, err
	}
	if w < 16 || h < 16 || w%2+h%2 != 0 || w > 7680 || h > 4320 {
		return nil, fmt.Errorf("%w: size %dx%d (even, 16x16-7680x4320)", ErrBadSettings, w, h)
	}
	if fps < 1 || fps > 120 {
		return nil, fmt.Errorf("%w: %d fps (1-120)", ErrBadSettings, fps)
	}
	enc, err := openX264(s, w, h, fps)
	if err != nil {
		return nil, err
	}
	return &videoEncoder{s: s, enc: enc, frame: astiav.AllocFrame(), out: astiav.AllocPacket(), w: w, h: h}, nil
}

func (e *videoEncoder) RequestKeyframe() { e.force.Store(true) }

func (e *videoEncoder) Encode(p *Picture) ([]VideoPacket, error) {
	if e.closed {
		return nil, errors.New("codec: encoder closed")
	}
	if p.Width != e.w || p.Height != e.h {
		return nil, fmt.Errorf("codec: picture %dx%d for a %dx%d encoder", p.Width, p.Height, e.w, e.h)
	}
	if err := frameFromPicture(p, e.frame); err != nil {
		return nil, err
	}
	e.frame.SetPictureType(astiav.PictureTypeNone)
	if !e.anyKey || e.force.Swap(false) || p.PTS-e.lastKey >= e.s.KeyframeInterval {
		e.frame.SetPictureType(astiav.PictureTypeI)
		e.anyKey, e.lastKey = true, p.PTS
	}
	err := e.enc.SendFrame(e.frame)
	e.frame.Unref()
	if err != nil {
		return nil, fmt.Errorf("codec: h264 encode: %w", err)
	}
	return drainVideo(e.enc, e.out, nil)
}

func (e *videoEncoder) Flush() ([]VideoPacket, error) {
	if e.closed {
		return nil, nil
	}
	_ = e.enc.SendFrame(nil)
	return drainVideo(e.enc, e.out, nil)
}

func (e *videoEncoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	e.enc.Free()
	liveVideo.Add(-1)
	e.frame.Free()
	e.out.Free()
	return nil
}

// opusPCM is the PCMDecoder for Opus: libavcodec's native decoder, planar
// float output interleaved here.
type opusPCM struct {
	dec   *astiav.CodecContext
	pkt   *astiav.Packet
	frame *astiav.Frame
}

// NewOpusDecoder makes an Opus → 48 kHz stereo float decoder.
func NewOpusDecoder() (PCMDecoder, error) {
	dec, err := openOpusDecoder()
	if err != nil {
		return nil, fmt.Errorf("codec: opus decoder: %w", err)
	}
	return &opusPCM{dec: dec, pkt: astiav.AllocPacket(), frame: astiav.AllocFrame()}, nil
}

func (o *opusPCM) Close() error {
	if o.dec == nil {
		return nil
	}
	o.dec.Free()
	o.dec = nil
	o.pkt.Free()
	o.frame.Free()
	return nil
}

func (o *opusPCM) Decode(dst []float32, data []byte) ([]float32, error) {
	if o.dec == nil {
		return dst, errors.New("codec: decoder closed")
	}
	if err := o.pkt.FromData(data); err != nil {
		return dst, fmt.Errorf("codec: packet: %w", err)
	}
	err := o.dec.SendPacket(o.pkt)
	o.pkt.Unref()
	if err != nil {
		return dst, nil // corrupt packet: no samples
	}
	for {
		err := o.dec.ReceiveFrame(o.frame)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return dst, nil
		}
		if err != nil {
			return dst, nil
		}
		dst = appendInterleaved(dst, o.frame)
		o.frame.Unref()
	}
}

// appendInterleaved appends a decoded frame's samples as interleaved stereo.
func appendInterleaved(dst []float32, f *astiav.Frame) []float32 {
	n := f.NbSamples()
	ch := f.ChannelLayout().NbChannels()
	switch f.SampleFormat() {
	case astiav.SampleFormatFltp:
		l := unsafeFloats(plane(f, 0, 4*n), n)
		r := l
		if ch > 1 {
			r = unsafeFloats(plane(f, 1, 4*n), n)
		}
		for i := 0; i < n; i++ {
			dst = append(dst, l[i], r[i])
		}
	case astiav.SampleFormatFlt:
		s := unsafeFloats(plane(f, 0, 4*n*ch), n*ch)
		for i := 0; i < n; i++ {
			if ch > 1 {
				dst = append(dst, s[i*ch], s[i*ch+1])
			} else {
				dst = append(dst, s[i], s[i])
			}
		}
	}
	return dst
}

// opusEncoder is the PCMEncoder for Opus: libopus, 20 ms frames.
type opusEncoder struct {
	enc    *astiav.CodecContext
	frame  *astiav.Frame
	out    *astiav.Packet
	format AudioFormat
	size   int
}

// NewOpusEncoder makes a 48 kHz stereo Opus encoder (libopus) at bitrate
// bits per second (default 96000).
func NewOpusEncoder(bitrate int) (PCMEncoder, error) {
	if bitrate == 0 {
		bitrate = 96000
	}
	if bitrate < 16000 || bitrate > 512000 {
		return nil, fmt.Errorf("%w: Opus bitrate %d is out of range 16k-512k", ErrBadSettings, bitrate)
	}
	enc, err := openOpusEncoder(bitrate)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	e := &opusEncoder{enc: enc, frame: astiav.AllocFrame(), out: astiav.AllocPacket()}
	e.size = e.enc.FrameSize()
	if e.size <= 0 {
		e.size = 960
	}
	e.format = AudioFormat{SampleRate: AACSampleRate, Channels: 2, Config: append([]byte(nil), e.enc.ExtraData()...)}
	return e, nil
}

func (e *opusEncoder) FrameSize() int      { return e.size }
func (e *opusEncoder) Format() AudioFormat { return e.format }

func (e *opusEncoder) Encode(pcm []float32, pts int64) ([]Packet, error) {
	if e.out == nil {
		return nil, errors.New("codec: encoder closed")
	}
	if len(pcm) != 2*e.size {
		return nil, fmt.Errorf("codec: %d samples for a %d-sample stereo frame", len(pcm), e.size)
	}
	e.frame.Unref()
	e.frame.SetNbSamples(e.size)
	e.frame.SetSampleFormat(astiav.SampleFormatFlt)
	e.frame.SetChannelLayout(astiav.ChannelLayoutStereo)
	e.frame.SetSampleRate(AACSampleRate)
	if err := e.frame.AllocBuffer(0); err != nil {
		return nil, fmt.Errorf("codec: audio frame: %w", err)
	}
	copy(unsafeFloats(plane(e.frame, 0, 8*e.size), 2*e.size), pcm)
	e.frame.SetPts(pts)
	err := e.enc.SendFrame(e.frame)
	e.frame.Unref()
	if err != nil {
		return nil, fmt.Errorf("codec: opus encode: %w", err)
	}
	return receivePackets(e.enc, e.out, nil, "opus")
}

func (e *opusEncoder) Close() error {
	if e.out == nil {
		return nil
	}
	e.enc.Free()
	e.frame.Free()
	e.out.Free()
	e.out = nil
	return nil
}

// openOpusEncoder opens libopus for 48 kHz stereo interleaved float input
// at bitrate: the encoder of the audio filters and of composites. A non-nil
// context is returned only on success.
func openOpusEncoder(bitrate int) (*astiav.CodecContext, error) {
	ec := astiav.FindEncoderByName("libopus")
	if ec == nil {
		return nil, errors.New("FFmpeg has no libopus encoder")
	}
	enc := astiav.AllocCodecContext(ec)
	enc.SetSampleFormat(astiav.SampleFormatFlt)
	enc.SetSampleRate(AACSampleRate)
	enc.SetChannelLayout(astiav.ChannelLayoutStereo)
	enc.SetBitRate(int64(bitrate))
	enc.SetTimeBase(astiav.NewRational(1, AACSampleRate))
	if err := enc.Open(ec, nil); err != nil {
		enc.Free()
		return nil, fmt.Errorf("open libopus: %w", err)
	}
	return enc, nil
}
