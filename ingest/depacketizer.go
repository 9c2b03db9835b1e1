package ingest

import (
	"bytes"
	"encoding/binary"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/whipcast/whipcast/media"
)

// slabSize is the size of the blocks frame payloads are carved from. A block
// is never reused: frames handed to a Stream are shared by readers and live
// as long as any of them holds one, so a full block is left to the GC and a
// fresh one allocated — one allocation per ~256 KiB of media, not per packet.
const slabSize = 256 << 10

// maxAccessUnit bounds one H.264 access unit; a bigger one is dropped rather
// than letting a peer grow memory without limit.
const maxAccessUnit = 8 << 20

// audioSlabSize is the block size of the audio track's slab. A block lives
// as long as its newest frame is in some window, so a 256 KiB block of
// 64 kb/s Opus would keep ~30 s of audio for a 16 s window; 32 KiB is ~4 s.
const audioSlabSize = 32 << 10

// slab is an append-only byte arena for frame payloads.
type slab struct {
	buf   []byte
	start int // beginning of the payload being built
	max   int // block size to grow to; 0 is slabSize
}

// grow makes room for n more bytes of the current payload, moving the
// partial payload to a fresh block if the current one is full.
func (s *slab) grow(n int) {
	if len(s.buf)+n <= cap(s.buf) {
		return
	}
	cur := len(s.buf) - s.start
	// Start small (an idle or audio-only session stays cheap) and double up
	// to slabSize.
	top := s.max
	if top <= 0 {
		top = slabSize
	}
	size := max(min(16<<10, top), min(top, 2*cap(s.buf)))
	if need := 2 * (cur + n); need > size {
		size = need
	}
	nb := make([]byte, cur, size)
	copy(nb, s.buf[s.start:])
	s.buf = nb
	s.start = 0
}

func (s *slab) len() int { return len(s.buf) - s.start }

// finish returns the payload built so far; it is never written again.
func (s *slab) finish() []byte {
	p := s.buf[s.start:len(s.buf):len(s.buf)]
	s.start = len(s.buf)
	return p
}

// discard drops the payload being built.
func (s *slab) discard() { s.buf = s.buf[:s.start] }

// h264Unit is one depacketized access unit.
type h264Unit struct {
	ts       uint32
	data     []byte // AVCC, parameter sets and AUDs removed
	keyframe bool
	config   *media.Config
}

// h264Depacketizer turns H.264 RTP payloads (RFC 6184: single NAL unit,
// STAP-A, FU-A) into access units in AVCC form. An access unit ends at the
// marker bit or at a change of RTP timestamp. Parameter sets are kept out of
// the payload and in a *media.Config that is replaced only when their bytes
// change. Nothing is emitted before the first IDR with SPS/PPS, nor after a
// loss until the next IDR: the frames that follow a lost packet reference
// what was lost and would decode to garbage (or not at all), so the outputs
// freeze on the last good frame rather than show it. needKeyframe is called
// in both cases, and on every further loss while waiting, so the caller
// sends a PLI.
type h264Depacketizer struct {
	emit         func(u h264Unit)
	needKeyframe func()

	slab     slab
	inAU     bool
	auTS     uint32
	idr      bool
	broken   bool
	waitKey  bool
	fuOpen   bool
	fuLenPos int // offset in slab.buf of the open FU-A NAL's length prefix

	sps, pps []byte // latest parameter sets seen (scratch, reused)
	config   *media.Config

	// counters
	dropped uint64
}

func newH264Depacketizer(emit func(h264Unit), needKeyframe func()) *h264Depacketizer {
	if needKeyframe == nil {
		needKeyframe = func() {}
	}
	return &h264Depacketizer{emit: emit, needKeyframe: needKeyframe, waitKey: true}
}

// push takes one RTP payload in sequence order; gap means packets were lost
// just before it.
func (d *h264Depacketizer) push(ts uint32, marker bool, payload []byte, gap bool) {
	if gap {
		// The lost packets may be the tail of the open unit or the head of
		// this one; neither can be trusted, and the units that follow
		// reference what was lost.
		if d.inAU {
			d.broken = true
		}
		// Asked again on every loss while waiting: the keyframe that
		// answered the last request may be what was lost. The session
		// rate-limits the PLIs.
		d.waitKey = true
		d.needKeyframe()
	}
	if d.inAU && ts != d.auTS {
		d.finishAU() // the unit had no marker packet
	}
	if !d.inAU {
		d.inAU = true
		d.auTS = ts
	}
	if gap {
		d.broken = true
	}
	if !d.broken {
		d.parse(payload)
	}
	if marker {
		d.finishAU()
	}
}

func (d *h264Depacketizer) parse(p []byte) {
	if len(p) < 1 {
		return // padding-only packet
	}
	switch typ := p[0] & 0x1f; {
	case typ >= 1 && typ <= 23:
		if d.fuOpen {
			d.broken = true
			return
		}
		d.addNAL(p)
	case typ == 24: // STAP-A, RFC 6184 §5.7.1
		if d.fuOpen {
			d.broken = true
			return
		}
		p = p[1:]
		for len(p) > 0 {
			if len(p) < 2 {
				d.broken = true
				return
			}
			n := int(binary.BigEndian.Uint16(p))
			p = p[2:]
			if n == 0 || n > len(p) {
				d.broken = true
				return
			}
			d.addNAL(p[:n])
			p = p[n:]
		}
	case typ == 28: // FU-A, RFC 6184 §5.8
		if len(p) < 3 {
			d.broken = true
			return
		}
		fu := p[1]
		start, end := fu&0x80 != 0, fu&0x40 != 0
		if start {
			if d.fuOpen {
				d.broken = true
				return
			}
			if !d.reserve(5 + len(p) - 2) {
				return
			}
			d.fuOpen = true
			d.fuLenPos = len(d.slab.buf)
			d.slab.buf = append(d.slab.buf, 0, 0, 0, 0, p[0]&0xe0|fu&0x1f)
		} else {
			if !d.fuOpen {
				d.broken = true
				return
			}
			if !d.reserve(len(p) - 2) {
				return
			}
		}
		d.slab.buf = append(d.slab.buf, p[2:]...)
		if end {
			d.fuOpen = false
			nal := d.slab.buf[d.fuLenPos+4:]
			if d.keepOutOfPayload(nal) {
				d.slab.buf = d.slab.buf[:d.fuLenPos]
				return
			}
			binary.BigEndian.PutUint32(d.slab.buf[d.fuLenPos:], uint32(len(nal)))
			if h264.NALUType(nal[0]&0x1f) == h264.NALUTypeIDR {
				d.idr = true
			}
		}
	default: // STAP-B, MTAP, FU-B need interleaved mode, which we never answer
		d.broken = true
	}
}

// reserve makes room for n bytes, keeping fuLenPos valid when the slab moves.
func (d *h264Depacketizer) reserve(n int) bool {
	if d.slab.len()+n > maxAccessUnit {
		d.broken = true
		d.fuOpen = false
		return false
	}
	old := d.slab.start
	d.slab.grow(n)
	d.fuLenPos -= old - d.slab.start
	return true
}

// keepOutOfPayload records parameter sets and reports the NAL units that do
// not go into the frame payload.
func (d *h264Depacketizer) keepOutOfPayload(nal []byte) bool {
	switch h264.NALUType(nal[0] & 0x1f) {
	case h264.NALUTypeSPS:
		d.sps = append(d.sps[:0], nal...)
		return true
	case h264.NALUTypePPS:
		d.pps = append(d.pps[:0], nal...)
		return true
	case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
		return true
	}
	return false
}

func (d *h264Depacketizer) addNAL(nal []byte) {
	if d.keepOutOfPayload(nal) {
		return
	}
	if !d.reserve(4 + len(nal)) {
		return
	}
	d.slab.buf = binary.BigEndian.AppendUint32(d.slab.buf, uint32(len(nal)))
	d.slab.buf = append(d.slab.buf, nal...)
	if h264.NALUType(nal[0]&0x1f) == h264.NALUTypeIDR {
		d.idr = true
	}
}

func (d *h264Depacketizer) finishAU() {
	ok := !d.broken && !d.fuOpen && d.slab.len() > 0
	if ok && d.idr {
		ok = d.updateConfig()
		if !ok {
			d.needKeyframe()
		}
	}
	if ok && d.waitKey {
		if d.idr {
			d.waitKey = false
		} else {
			ok = false
		}
	}
	if ok {
		d.emit(h264Unit{ts: d.auTS, data: d.slab.finish(), keyframe: d.idr, config: d.config})
	} else {
		if d.slab.len() > 0 || d.broken {
			d.dropped++
		}
		d.slab.discard()
	}
	d.inAU = false
	d.idr = false
	d.broken = false
	d.fuOpen = false
}

// updateConfig makes d.config match the latest SPS/PPS, allocating a new
// Config only when their bytes changed (libwebrtc resends them before every
// IDR). It reports false when there are no usable parameter sets yet.
func (d *h264Depacketizer) updateConfig() bool {
	if len(d.sps) == 0 || len(d.pps) == 0 {
		return d.config != nil
	}
	if d.config != nil && bytes.Equal(d.config.SPS, d.sps) && bytes.Equal(d.config.PPS, d.pps) {
		return true
	}
	var sps h264.SPS
	if err := sps.Unmarshal(d.sps); err != nil {
		return d.config != nil
	}
	d.config = &media.Config{
		SPS:    bytes.Clone(d.sps),
		PPS:    bytes.Clone(d.pps),
		Width:  sps.Width(),
		Height: sps.Height(),
	}
	return true
}

// opusDepacketizer turns Opus RTP payloads (RFC 7587: one packet per RTP
// packet) into frames carved from a slab.
type opusDepacketizer struct {
	slab slab
	emit func(ts uint32, data []byte)
}

func (d *opusDepacketizer) push(ts uint32, payload []byte) {
	if len(payload) == 0 {
		return
	}
	d.slab.grow(len(payload))
	d.slab.buf = append(d.slab.buf, payload...)
	d.emit(ts, d.slab.finish())
}
