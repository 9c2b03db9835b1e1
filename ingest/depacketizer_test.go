package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"

	"github.com/whipcast/whipcast/media"
)

// fixtureAU is one access unit of testdata/av.h264 with its NAL units.
type fixtureAU struct {
	nalus [][]byte
	idr   bool
}

func loadFixture(tb testing.TB) []fixtureAU {
	tb.Helper()
	f, err := os.Open("../testdata/av.h264")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var aus []fixtureAU
	var cur fixtureAU
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		cur.nalus = append(cur.nalus, bytes.Clone(nal.Data))
		switch nal.UnitType {
		case h264reader.NalUnitTypeCodedSliceIdr:
			cur.idr = true
			fallthrough
		case h264reader.NalUnitTypeCodedSliceNonIdr:
			aus = append(aus, cur)
			cur = fixtureAU{}
		}
	}
	return aus
}

// packetize turns access units into RTP packets the way pion (and
// libwebrtc) send them: SPS+PPS in a STAP-A, big slices in FU-A.
func packetize(tb testing.TB, aus []fixtureAU, mtu uint16) []*rtp.Packet {
	tb.Helper()
	p := rtp.NewPacketizer(mtu, 102, 0x1234, &codecs.H264Payloader{}, rtp.NewFixedSequencer(65000), 90000)
	var out []*rtp.Packet
	ts := uint32(math32Max - 90000) // wraps during the fixture
	for _, au := range aus {
		var annexB []byte
		for _, n := range au.nalus {
			annexB = append(annexB, 0, 0, 0, 1)
			annexB = append(annexB, n...)
		}
		pkts := p.Packetize(annexB, 3000)
		for _, pk := range pkts {
			pk.Timestamp = ts
		}
		ts += 3000
		out = append(out, pkts...)
	}
	return out
}

const math32Max = 1<<32 - 1

type collected struct {
	units []h264Unit
	plis  int
}

func newCollector() (*h264Depacketizer, *collected) {
	c := &collected{}
	d := newH264Depacketizer(func(u h264Unit) { c.units = append(c.units, u) }, func() { c.plis++ })
	return d, c
}

func wantAVCC(au fixtureAU) []byte {
	var b []byte
	for _, n := range au.nalus {
		switch n[0] & 0x1f {
		case 7, 8, 9:
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

func TestH264DepacketizeFixture(t *testing.T) {
	aus := loadFixture(t)
	if len(aus) != 300 {
		t.Fatalf("fixture has %d access units", len(aus))
	}
	pkts := packetize(t, aus, 1200)
	d, c := newCollector()
	for _, p := range pkts {
		d.push(p.Timestamp, p.Marker, p.Payload, false)
	}
	if len(c.units) != len(aus) {
		t.Fatalf("got %d units, want %d", len(c.units), len(aus))
	}
	var cfg *media.Config
	for i, u := range c.units {
		if !bytes.Equal(u.data, wantAVCC(aus[i])) {
			t.Fatalf("unit %d: payload differs", i)
		}
		if u.keyframe != aus[i].idr {
			t.Errorf("unit %d: keyframe %v", i, u.keyframe)
		}
		if i == 0 {
			cfg = u.config
			if cfg == nil || cfg.Width != 320 || cfg.Height != 240 {
				t.Fatalf("config %+v", cfg)
			}
		} else if u.config != cfg {
			t.Errorf("unit %d: config replaced though SPS/PPS are repeated unchanged", i)
		}
	}
	if c.plis != 0 {
		t.Errorf("%d PLIs without loss", c.plis)
	}
}

func TestH264DepacketizeLossAndParams(t *testing.T) {
	aus := loadFixture(t)[:120] // 2 GOPs (IDR at 0 and 60)
	pkts := packetize(t, aus, 300)

	t.Run("no output before the first keyframe", func(t *testing.T) {
		d, c := newCollector()
		// start in the middle of the first GOP
		start := 0
		for i, p := range pkts {
			if p.Timestamp == pkts[0].Timestamp+10*3000 {
				start = i
				break
			}
		}
		for _, p := range pkts[start:] {
			d.push(p.Timestamp, p.Marker, p.Payload, false)
		}
		if len(c.units) != 60 || !c.units[0].keyframe {
			t.Fatalf("got %d units, first keyframe=%v", len(c.units), len(c.units) > 0 && c.units[0].keyframe)
		}
	})

	t.Run("gap drops until the next keyframe and asks for one", func(t *testing.T) {
		d, c := newCollector()
		lostTS := pkts[0].Timestamp + 20*3000
		for _, p := range pkts {
			gap := false
			if p.Timestamp == lostTS && !p.Marker {
				continue // lose the first packets of frame 20
			}
			if p.Timestamp == lostTS {
				gap = true
			}
			d.push(p.Timestamp, p.Marker, p.Payload, gap)
		}
		if len(c.units) != 20+60 {
			t.Fatalf("got %d units, want 80", len(c.units))
		}
		if !c.units[20].keyframe || c.plis != 1 {
			t.Fatalf("unit 20 keyframe=%v, %d PLIs", c.units[20].keyframe, c.plis)
		}
	})

	t.Run("gap after a unit without its marker drops that unit too", func(t *testing.T) {
		d, c := newCollector()
		tailTS := pkts[0].Timestamp + 20*3000
		lost := false
		for _, p := range pkts {
			if p.Timestamp == tailTS && p.Marker {
				lost = true // lose the last packet of frame 20
				continue
			}
			d.push(p.Timestamp, p.Marker, p.Payload, lost)
			lost = false
		}
		if len(c.units) != 20+60 || c.plis != 1 {
			t.Fatalf("got %d units (want 80), %d PLIs", len(c.units), c.plis)
		}
	})

	t.Run("SPS/PPS repeated with the same bytes keep the Config", func(t *testing.T) {
		// libwebrtc (and this fixture) send SPS and PPS before every IDR:
		// only a change of their bytes is a change (srs#4695).
		withSPS := 0
		for _, au := range aus {
			if len(au.nalus) > 0 && au.nalus[0][0]&0x1f == 7 {
				withSPS++
			}
		}
		if withSPS < 2 {
			t.Fatalf("the fixture repeats SPS in %d access units, want 2 or more", withSPS)
		}
		d, c := newCollector()
		for _, p := range pkts {
			d.push(p.Timestamp, p.Marker, p.Payload, false)
		}
		for i, u := range c.units {
			if u.config != c.units[0].config {
				t.Fatalf("unit %d has another Config (pointer) for the same SPS/PPS bytes", i)
			}
		}
	})

	t.Run("changed SPS makes a new Config", func(t *testing.T) {
		d, c := newCollector()
		for _, p := range pkts {
			d.push(p.Timestamp, p.Marker, p.Payload, false)
		}
		first := c.units[0].config
		// Same SPS bytes but a different PPS id byte: a real change.
		sps := first.SPS
		pps := append(bytes.Clone(first.PPS[:len(first.PPS)-1]), first.PPS[len(first.PPS)-1]^0x01)
		ts := pkts[len(pkts)-1].Timestamp + 3000
		d.push(ts, false, stapA(sps, pps), false)
		d.push(ts, true, aus[0].nalus[len(aus[0].nalus)-1], false)
		last := c.units[len(c.units)-1]
		if last.config == first || !bytes.Equal(last.config.PPS, pps) {
			t.Fatal("config not replaced on a PPS change")
		}
	})
}

func stapA(nalus ...[]byte) []byte {
	b := []byte{24}
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
	}
	return b
}

// BenchmarkDepacketizeH264 measures RTP payloads → AVCC access units over
// the fixture (reorder buffer included, packets in order).
func BenchmarkDepacketizeH264(b *testing.B) {
	aus := loadFixture(b)
	pkts := packetize(b, aus, 1200)
	var total int64
	for _, p := range pkts {
		total += int64(len(p.Payload))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	units := 0
	d := newH264Depacketizer(func(h264Unit) { units++ }, func() {})
	defer func() {
		if units < len(aus)*(b.N-1) {
			b.Fatalf("%d units out of %d×%d", units, b.N, len(aus))
		}
	}()
	rb := newReorderBuffer(func(ts uint32, marker bool, payload []byte, gap bool, _ time.Time) {
		d.push(ts, marker, payload, gap)
	})
	now := time.Now()
	seq := uint16(0)
	b.ResetTimer()
	for b.Loop() {
		for _, p := range pkts {
			rb.push(seq, p.Timestamp, p.Marker, p.Payload, false, now)
			seq++
			now = now.Add(time.Millisecond) // ends the start-up hold
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/packet")
	b.ReportMetric(float64(len(aus)), "frames/op")
}

// BenchmarkDepacketizeOpus measures Opus payloads → frames.
func BenchmarkDepacketizeOpus(b *testing.B) {
	payload := bytes.Repeat([]byte{0xfc}, 160)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	d := &opusDepacketizer{emit: func(uint32, []byte) {}}
	ts := uint32(0)
	for b.Loop() {
		d.push(ts, payload)
		ts += 960
	}
}

// Blocks grow to the slab's size and no further: an audio slab's blocks stay
// small, so a window keeps little audio beyond what it lists.
func TestSlabBlockSize(t *testing.T) {
	for _, tc := range []struct{ max, want int }{{0, slabSize}, {audioSlabSize, audioSlabSize}} {
		s := slab{max: tc.max}
		top := 0
		for range 4 * slabSize / 200 {
			s.grow(200)
			s.buf = append(s.buf, make([]byte, 200)...)
			s.finish()
			top = max(top, cap(s.buf))
		}
		if top != tc.want {
			t.Errorf("max %d: blocks grew to %d, want %d", tc.max, top, tc.want)
		}
	}
}
