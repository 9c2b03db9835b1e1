//go:build !nocodec

package codec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/asticode/go-astiav"
)

// liveVideo counts the video decoders and encoders not yet freed.
var liveVideo atomic.Int64

// LiveVideoCodecs returns how many video decoders and encoders are open: a
// leak check for tests and a gauge for metrics.
func LiveVideoCodecs() int { return int(liveVideo.Load()) }

// h264Decoder is FFmpeg's native H.264 decoder, single-threaded: frame
// threading would hold pictures back by one frame per thread, and a live
// filter wants each picture as soon as its access unit arrives.
type h264Decoder struct {
	dec    *astiav.CodecContext
	pkt    *astiav.Packet
	frame  *astiav.Frame
	closed bool
}

func newH264Decoder() (*h264Decoder, error) {
	c := astiav.FindDecoder(astiav.CodecIDH264)
	if c == nil {
		return nil, errors.New("codec: FFmpeg has no H.264 decoder")
	}
	d := &h264Decoder{dec: astiav.AllocCodecContext(c), pkt: astiav.AllocPacket(), frame: astiav.AllocFrame()}
	liveVideo.Add(1)
	d.dec.SetThreadCount(1)
	d.dec.SetTimeBase(astiav.NewRational(1, VideoClockRate))
	if err := d.dec.Open(c, nil); err != nil {
		d.close()
		return nil, fmt.Errorf("codec: open h264 decoder: %w", err)
	}
	return d, nil
}

// send hands one access unit to the decoder and calls got for every picture
// that became ready; the frame is unreferenced after got returns.
func (d *h264Decoder) send(data []byte, pts int64, got func(*astiav.Frame) error) error {
	if d.closed {
		return errors.New("codec: decoder closed")
	}
	if data == nil {
		_ = d.dec.SendPacket(nil)
	} else {
		if err := d.pkt.FromData(data); err != nil {
			return fmt.Errorf("codec: packet: %w", err)
		}
		d.pkt.SetPts(pts)
		d.pkt.SetDts(pts)
		err := d.dec.SendPacket(d.pkt)
		d.pkt.Unref()
		if err != nil {
			return nil // corrupt or undecodable unit: skipped, the next IDR repairs
		}
	}
	for {
		err := d.dec.ReceiveFrame(d.frame)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return nil // a broken picture is dropped, not fatal
		}
		err = got(d.frame)
		d.frame.Unref()
		if err != nil {
			return err
		}
	}
}

func (d *h264Decoder) close() {
	if d.closed {
		return
	}
	d.closed = true
	liveVideo.Add(-1)
	d.dec.Free()
	d.pkt.Free()
	d.frame.Free()
}

// pictureDecoder is the VideoDecoder: it copies each picture into Go memory.
type pictureDecoder struct{ d *h264Decoder }

// NewVideoDecoder makes an H.264 decoder that returns pictures in Go memory.
func NewVideoDecoder() (VideoDecoder, error) {
	d, err := newH264Decoder()
	if err != nil {
		return nil, err
	}
	return &pictureDecoder{d: d}, nil
}

func (p *pictureDecoder) Decode(data []byte, pts int64) ([]*Picture, error) {
	var out []*Picture
	err := p.d.send(data, pts, func(f *astiav.Frame) error {
		pic, err := pictureFromFrame(f, nil)
		if err != nil {
			return err
		}
		out = append(out, pic)
		return nil
	})
	return out, err
}

func (p *pictureDecoder) Close() error { p.d.close(); return nil }

// videoTranscoder is decode → filter graph → libx264. The graph and the
// encoder are made on the first picture (the buffer source needs its size)
// and made again when the input size changes.
type videoTranscoder struct {
	s        VideoSettings
	dec      *h264Decoder
	graph    *astiav.FilterGraph
	src      *astiav.FilterContext
	sink     *astiav.FilterContext
	enc      *astiav.CodecContext
	fframe   *astiav.Frame
	out      *astiav.Packet
	inW, inH int
	inFmt    astiav.PixelFormat
	lastKey  int64
	anyKey   bool
	force    atomic.Bool
	closed   bool
}

// NewVideoTranscoder makes an H.264 → filter graph → H.264 transcoder.
func NewVideoTranscoder(s VideoSettings) (VideoTranscoder, error) {
	if s.Filter == "" {
		s.Filter = "null"
	}
	if err := s.defaults(); err != nil {
		return nil, err
	}
	// Parse the graph once now so a bad description fails at start, not on
	// the first picture.
	if err := checkGraph(s.Filter); err != nil {
		return nil, err
	}
	d, err := newH264Decoder()
	if err != nil {
		return nil, err
	}
	return &videoTranscoder{s: s, dec: d, fframe: astiav.AllocFrame(), out: astiav.AllocPacket()}, nil
}

func checkGraph(desc string) error {
	t := &videoTranscoder{s: VideoSettings{Filter: desc}}
	// A large picture, so crops and overlays sized for real streams fit; a
	// chain that does not fit the actual picture fails on its first frame.
	err := t.buildGraph(3840, 2160, astiav.PixelFormatYuv420P)
	t.freeGraph()
	return err
}

func (t *videoTranscoder) RequestKeyframe() { t.force.Store(true) }

func (t *videoTranscoder) Transcode(data []byte, pts int64) ([]VideoPacket, error) {
	if t.closed {
		return nil, errors.New("codec: transcoder closed")
	}
	var out []VideoPacket
	err := t.dec.send(data, pts, func(f *astiav.Frame) error {
		var err error
		out, err = t.filter(f, out)
		return err
	})
	return out, err
}

func (t *videoTranscoder) Flush() ([]VideoPacket, error) {
	if t.closed {
		return nil, nil
	}
	var out []VideoPacket
	err := t.dec.send(nil, 0, func(f *astiav.Frame) error {
		var err error
		out, err = t.filter(f, out)
		return err
	})
	if err != nil || t.enc == nil {
		return out, err
	}
	if err := t.src.BuffersrcAddFrame(nil, astiav.NewBuffersrcFlags()); err == nil {
		if out, err = t.drainGraph(out); err != nil {
			return out, err
		}
	}
	_ = t.enc.SendFrame(nil)
	return t.drainEncoder(out)
}

func (t *videoTranscoder) filter(f *astiav.Frame, out []VideoPacket) ([]VideoPacket, error) {
	if t.graph == nil || f.Width() != t.inW || f.Height() != t.inH || f.PixelFormat() != t.inFmt {
		// First picture, or the publisher changed resolution: drain the old
		// encoder and start over with the new size.
		if t.enc != nil {
			_ = t.enc.SendFrame(nil)
			out, _ = t.drainEncoder(out)
		}
		t.freeGraph()
		if err := t.buildGraph(f.Width(), f.Height(), f.PixelFormat()); err != nil {
			return out, err
		}
	}
	if err := t.src.BuffersrcAddFrame(f, astiav.NewBuffersrcFlags()); err != nil {
		return out, fmt.Errorf("codec: filter input: %w", err)
	}
	return t.drainGraph(out)
}

func (t *videoTranscoder) drainGraph(out []VideoPacket) ([]VideoPacket, error) {
	for {
		err := t.sink.BuffersinkGetFrame(t.fframe, astiav.NewBuffersinkFlags())
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("codec: filter output: %w", err)
		}
		if t.enc == nil {
			if err := t.openEncoder(t.fframe.Width(), t.fframe.Height()); err != nil {
				t.fframe.Unref()
				return out, err
			}
		}
		pts := t.fframe.Pts()
		t.fframe.SetPictureType(astiav.PictureTypeNone)
		if !t.anyKey || t.force.Swap(false) || pts-t.lastKey >= t.s.KeyframeInterval {
			t.fframe.SetPictureType(astiav.PictureTypeI)
			t.anyKey, t.lastKey = true, pts
		}
		err = t.enc.SendFrame(t.fframe)
		t.fframe.Unref()
		if err != nil {
			return out, fmt.Errorf("codec: h264 encode: %w", err)
		}
		if out, err = t.drainEncoder(out); err != nil {
			return out, err
		}
	}
}

func (t *videoTranscoder) drainEncoder(out []VideoPacket) ([]VideoPacket, error) {
	return drainVideo(t.enc, t.out, out)
}

// drainVideo appends every packet enc has ready to out.
func drainVideo(enc *astiav.CodecContext, pkt *astiav.Packet, out []VideoPacket) ([]VideoPacket, error) {
	for {
		err := enc.ReceivePacket(pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("codec: h264 encode: %w", err)
		}
		out = append(out, VideoPacket{
			Data:     append([]byte(nil), pkt.Data()...),
			PTS:      pkt.Pts(),
			DTS:      pkt.Dts(),
			Keyframe: pkt.Flags().Has(astiav.PacketFlagKey),
		})
		pkt.Unref()
	}
}

func (t *videoTranscoder) buildGraph(w, h int, pf astiav.PixelFormat) error {
	t.graph = astiav.AllocFilterGraph()
	t.graph.SetThreadCount(1)
	var err error
	t.src, err = t.graph.NewFilterContext(astiav.FindFilterByName("buffer"), "in", astiav.FilterArgs{
		"video_size":   strconv.Itoa(w) + "x" + strconv.Itoa(h),
		"pix_fmt":      strconv.Itoa(int(pf)),
		"time_base":    "1/" + strconv.Itoa(VideoClockRate),
		"pixel_aspect": "1/1",
	})
	if err != nil {
		return fmt.Errorf("codec: buffer source: %w", err)
	}
	t.sink, err = t.graph.NewFilterContext(astiav.FindFilterByName("buffersink"), "out", nil)
	if err != nil {
		return fmt.Errorf("codec: buffer sink: %w", err)
	}
	outputs := astiav.AllocFilterInOut()
	outputs.SetName("in")
	outputs.SetFilterContext(t.src)
	outputs.SetPadIdx(0)
	inputs := astiav.AllocFilterInOut()
	inputs.SetName("out")
	inputs.SetFilterContext(t.sink)
	inputs.SetPadIdx(0)
	// The encoder takes yuv420p; the format filter converts what the chain
	// made (overlay of an RGBA logo may hand back another format).
	desc := t.s.Filter + ",format=yuv420p"
	if strings.Contains(t.s.Filter, "[out]") {
		desc = strings.Replace(t.s.Filter, "[out]", "[wc_fmt];[wc_fmt]format=yuv420p[out]", 1)
	}
	err = t.graph.Parse(desc, inputs, outputs)
	inputs.Free()
	outputs.Free()
	if err != nil {
		return fmt.Errorf("%w: filter graph %q: %w", ErrBadSettings, t.s.Filter, err)
	}
	if err := t.graph.Configure(); err != nil {
		return fmt.Errorf("%w: filter graph %q: %w", ErrBadSettings, t.s.Filter, err)
	}
	t.inW, t.inH, t.inFmt = w, h, pf
	return nil
}

func (t *videoTranscoder) freeGraph() {
	if t.graph != nil {
		t.graph.Free()
		t.graph, t.src, t.sink = nil, nil, nil
	}
	if t.enc != nil {
		t.enc.Free()
		t.enc = nil
		liveVideo.Add(-1)
	}
}

func (t *videoTranscoder) openEncoder(w, h int) error {
	enc, err := openX264(t.s, w, h, 30)
	if err != nil {
		return err
	}
	t.enc = enc
	return nil
}

// defaults fills the zero fields of s and checks the bitrate.
func (s *VideoSettings) defaults() error {
	if s.Bitrate == 0 {
		s.Bitrate = DefaultVideoBitrate
	}
	if s.KeyframeInterval == 0 {
		s.KeyframeInterval = DefaultVideoKeyframeInterval
	}
	if s.Preset == "" {
		s.Preset = DefaultVideoPreset
	}
	if s.Bitrate < 50000 || s.Bitrate > 50000000 {
		return fmt.Errorf("%w: video bitrate %d is out of range 50k-50M", ErrBadSettings, s.Bitrate)
	}
	if astiav.FindEncoderByName("libx264") == nil {
		return errors.New("codec: FFmpeg has no libx264 encoder")
	}
	return nil
}

// openX264 opens libx264 for w×h pictures at fps: zerolatency (no frame
// threads, no B-frames, so DTS = PTS), IDRs when the caller marks a picture
// I, SPS/PPS repeated in front of every IDR. It counts in LiveVideoCodecs.
func openX264(s VideoSettings, w, h, fps int) (*astiav.CodecContext, error) {
	c := astiav.FindEncoderByName("libx264")
	enc := astiav.AllocCodecContext(c)
	liveVideo.Add(1)
	enc.SetWidth(w)
	enc.SetHeight(h)
	enc.SetPixelFormat(astiav.PixelFormatYuv420P)
	enc.SetTimeBase(astiav.NewRational(1, VideoClockRate))
	enc.SetFramerate(astiav.NewRational(fps, 1))
	enc.SetSampleAspectRatio(astiav.NewRational(1, 1))
	enc.SetBitRate(int64(s.Bitrate))
	// IDRs come when asked (every KeyframeInterval of PTS or on request);
	// the GOP limit is only a backstop.
	enc.SetGopSize(int(10 * s.KeyframeInterval * int64(fps) / VideoClockRate))
	d := astiav.NewDictionary()
	defer d.Free()
	_ = d.Set("preset", s.Preset, astiav.NewDictionaryFlags())
	_ = d.Set("tune", "zerolatency", astiav.NewDictionaryFlags())
	_ = d.Set("profile", "high", astiav.NewDictionaryFlags())
	_ = d.Set("forced-idr", "1", astiav.NewDictionaryFlags())
	_ = d.Set("x264-params", "scenecut=0:repeat-headers=1", astiav.NewDictionaryFlags())
	if err := enc.Open(c, d); err != nil {
		enc.Free()
		liveVideo.Add(-1)
		return nil, fmt.Errorf("codec: open libx264: %w", err)
	}
	return enc, nil
}

func (t *videoTranscoder) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	t.freeGraph()
	t.dec.close()
	t.fframe.Free()
	t.out.Free()
	return nil
}
