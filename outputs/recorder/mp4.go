package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/Eyevinn/mp4ff/mp4"
)

// The single-file recording is a progressive MP4 with the moov first
// ("faststart", ISO/IEC 14496-12 8.2): every sample is listed in the moov's
// sample tables, so any player, editor or browser plays and seeks it without
// fragment support, and it can start playing while downloading. It is built
// from the recorded CMAF fragments: the sample tables from their trun boxes,
// mdat from their payloads, interleaved one segment per chunk. An init change
// is a second sample description in stsd (8.5.2) used by the chunks after it.

const movieTimescale = 1000

// mp4Sample is one sample's table entry.
type mp4Sample struct {
	dur  uint32
	size uint32
	cto  int32
	sync bool
}

// mp4Chunk is one segment of one track: a run of samples stored together.
type mp4Chunk struct {
	track   int
	seg     *entry
	msn     uint64
	samples int
	size    int64
	sdi     uint32
	off     uint64
}

type mp4Track struct {
	idx     *trackIndex
	trak    *mp4.TrakBox
	ts      uint32
	samples []mp4Sample
	chunks  []*mp4Chunk
	start   uint64 // first BMDT
	dur     uint64 // media duration in ts
}

// fragments calls fn for each moof+mdat of a segment's bytes.
func fragments(b []byte, fn func(moof *mp4.MoofBox, mdat *mp4.MdatBox) error) error {
	r := bytes.NewReader(b)
	var moof *mp4.MoofBox
	for pos := uint64(0); pos < uint64(len(b)); {
		box, err := mp4.DecodeBox(pos, r)
		if err != nil {
			return err
		}
		pos += box.Size()
		switch bx := box.(type) {
		case *mp4.MoofBox:
			moof = bx
		case *mp4.MdatBox:
			if moof == nil {
				return errors.New("mdat without moof")
			}
			if err := fn(moof, bx); err != nil {
				return err
			}
			moof = nil
		}
	}
	return nil
}

func readAt(dir string, e *entry) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, e.File))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, e.Size)
	if _, err := f.ReadAt(b, e.Offset); err != nil {
		return nil, err
	}
	return b, nil
}

// buildTrack reads a track's inits and fragments into sample tables.
func buildTrack(dir string, ti int, t *trackIndex) (*mp4Track, error) {
	mt := &mp4Track{idx: t}
	sdis := map[int]uint32{}
	var stsd *mp4.StsdBox
	for i := range t.inits {
		in := &t.inits[i]
		b, err := os.ReadFile(filepath.Join(dir, in.File))
		if err != nil {
			return nil, err
		}
		f, err := mp4.DecodeFile(bytes.NewReader(b))
		if err != nil || f.Init == nil || f.Init.Moov == nil || f.Init.Moov.Trak == nil {
			return nil, fmt.Errorf("init %s: %v", in.File, err)
		}
		trak := f.Init.Moov.Trak
		if mt.trak == nil {
			mt.trak, mt.ts = trak, trak.Mdia.Mdhd.Timescale
			stsd = trak.Mdia.Minf.Stbl.Stsd
			sdis[in.Version] = 1
			continue
		}
		entries := trak.Mdia.Minf.Stbl.Stsd.Children
		if len(entries) > 0 {
			stsd.AddChild(entries[0])
			sdis[in.Version] = uint32(len(stsd.Children))
		}
	}
	if mt.trak == nil {
		return nil, nil
	}
	var end uint64
	for i := range t.segs {
		s := &t.segs[i]
		sdi, ok := sdis[s.Version]
		if !ok {
			continue
		}
		b, err := readAt(dir, s)
		if err != nil {
			return nil, err
		}
		if len(mt.samples) == 0 {
			mt.start = s.BMDT
		} else if s.BMDT > end {
			// A gap (a missing segment): the last sample lasts until the
			// next one starts, so the tracks stay in sync.
			mt.samples[len(mt.samples)-1].dur += uint32(s.BMDT - end)
			mt.dur += s.BMDT - end
		}
		c := &mp4Chunk{track: ti, seg: s, msn: s.MSN, sdi: sdi}
		err = fragments(b, func(moof *mp4.MoofBox, mdat *mp4.MdatBox) error {
			for _, tr := range moof.Traf.Truns {
				for _, sm := range tr.Samples {
					flags := sm.Flags
					if !tr.HasSampleFlags() {
						flags = moof.Traf.Tfhd.DefaultSampleFlags
					}
					mt.samples = append(mt.samples, mp4Sample{
						dur: sm.Dur, size: sm.Size, cto: sm.CompositionTimeOffset,
						sync: flags&0x00010000 == 0,
					})
					c.samples++
					mt.dur += uint64(sm.Dur)
				}
			}
			c.size += int64(len(mdat.Data))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", s.Key, err)
		}
		end = s.BMDT + s.Dur
		if c.samples > 0 {
			mt.chunks = append(mt.chunks, c)
		}
	}
	return mt, nil
}

// stbl builds the sample tables; offsets are filled in later.
func (mt *mp4Track) stbl(co64 bool) *mp4.StblBox {
	stbl := mp4.NewStblBox()
	stbl.AddChild(mt.trak.Mdia.Minf.Stbl.Stsd)
	stts := &mp4.SttsBox{}
	ctts := &mp4.CttsBox{}
	var counts []uint32
	var offsets []int32
	hasCTO, negCTO := false, false
	stss := &mp4.StssBox{}
	stsz := &mp4.StszBox{SampleNumber: uint32(len(mt.samples))}
	for i, s := range mt.samples {
		if n := len(stts.SampleCount); n > 0 && stts.SampleTimeDelta[n-1] == s.dur {
			stts.SampleCount[n-1]++
		} else {
			stts.SampleCount = append(stts.SampleCount, 1)
			stts.SampleTimeDelta = append(stts.SampleTimeDelta, s.dur)
		}
		if n := len(counts); n > 0 && offsets[n-1] == s.cto {
			counts[n-1]++
		} else {
			counts = append(counts, 1)
			offsets = append(offsets, s.cto)
		}
		hasCTO = hasCTO || s.cto != 0
		negCTO = negCTO || s.cto < 0
		if s.sync {
			stss.SampleNumber = append(stss.SampleNumber, uint32(i+1))
		}
		stsz.SampleSize = append(stsz.SampleSize, s.size)
	}
	stbl.AddChild(stts)
	if hasCTO {
		if negCTO {
			ctts.Version = 1
		}
		_ = ctts.AddSampleCountsAndOffset(counts, offsets)
		stbl.AddChild(ctts)
	}
	stsc := &mp4.StscBox{}
	var lastSPC, lastSDI uint32
	for i, c := range mt.chunks {
		if i == 0 || uint32(c.samples) != lastSPC || c.sdi != lastSDI {
			_ = stsc.AddEntry(uint32(i+1), uint32(c.samples), c.sdi)
			lastSPC, lastSDI = uint32(c.samples), c.sdi
		}
	}
	stbl.AddChild(stsc)
	stbl.AddChild(stsz)
	if len(stss.SampleNumber) < len(mt.samples) {
		stbl.AddChild(stss)
	}
	if co64 {
		b := &mp4.Co64Box{}
		for _, c := range mt.chunks {
			b.ChunkOffset = append(b.ChunkOffset, c.off)
		}
		stbl.AddChild(b)
	} else {
		b := &mp4.StcoBox{}
		for _, c := range mt.chunks {
			b.ChunkOffset = append(b.ChunkOffset, uint32(c.off))
		}
		stbl.AddChild(b)
	}
	return stbl
}

// writeMP4 writes the progressive MP4 of a session's work directory and
// returns its duration in seconds.
func writeMP4(w io.Writer, dir string, tracks []*trackIndex) (float64, error) {
	var mts []*mp4Track
	var chunks []*mp4Chunk
	for i, t := range tracks {
		mt, err := buildTrack(dir, len(mts), t)
		if err != nil {
			return 0, fmt.Errorf("track %s: %w", t.name, err)
		}
		if mt == nil || len(mt.chunks) == 0 {
			continue
		}
		_ = i
		mts = append(mts, mt)
		chunks = append(chunks, mt.chunks...)
	}
	if len(mts) == 0 {
		return 0, errors.New("nothing recorded")
	}
	// Interleave: segment by segment, tracks in order within one.
	sort.SliceStable(chunks, func(i, j int) bool {
		if chunks[i].msn != chunks[j].msn {
			return chunks[i].msn < chunks[j].msn
		}
		return chunks[i].track < chunks[j].track
	})
	var payload int64
	for _, c := range chunks {
		payload += c.size
	}
	// Every track starts at the earliest track's start: a later one gets an
	// empty edit (8.6.6) so audio and video stay in sync.
	start := -1.0
	for _, mt := range mts {
		s := float64(mt.start) / float64(mt.ts)
		if start < 0 || s < start {
			start = s
		}
	}
	ftyp := mp4.NewFtyp("isom", 0x200, []string{"isom", "iso2", "avc1", "mp41"})
	build := func(co64 bool) (*mp4.MoovBox, float64) {
		moov := mp4.NewMoovBox()
		mvhd := mp4.CreateMvhd()
		mvhd.Timescale = movieTimescale
		mvhd.NextTrackID = uint32(len(mts) + 1)
		moov.AddChild(mvhd)
		var movieDur uint64
		for i, mt := range mts {
			trak := mp4.NewTrakBox()
			tkhd := mt.trak.Tkhd
			tkhd.TrackID = uint32(i + 1)
			tkhd.Flags = 0x000003 // enabled, in movie
			delay := uint64((float64(mt.start)/float64(mt.ts) - start) * movieTimescale)
			mediaDur := mt.dur * movieTimescale / uint64(mt.ts)
			tkhd.Duration = delay + mediaDur
			movieDur = max(movieDur, tkhd.Duration)
			trak.AddChild(tkhd)
			if delay > 0 {
				edts := &mp4.EdtsBox{}
				edts.AddChild(&mp4.ElstBox{Entries: []mp4.ElstEntry{
					{SegmentDuration: delay, MediaTime: -1, MediaRateInteger: 1},
					{SegmentDuration: mediaDur, MediaTime: 0, MediaRateInteger: 1},
				}})
				trak.AddChild(edts)
			}
			mdia := mt.trak.Mdia
			mdia.Mdhd.Duration = mt.dur
			minf := mdia.Minf
			stbl := mt.stbl(co64)
			for j, c := range minf.Children {
				if _, ok := c.(*mp4.StblBox); ok {
					minf.Children[j] = stbl
				}
			}
			minf.Stbl = stbl
			trak.AddChild(mdia)
			moov.AddChild(trak)
		}
		mvhd.Duration = movieDur
		return moov, float64(movieDur) / movieTimescale
	}
	co64 := uint64(payload)+ftyp.Size()+(1<<20) > 1<<32-1
	moov, _ := build(co64)
	mdatHdr := uint64(8)
	if payload+8 > 1<<32-1 {
		mdatHdr = 16
	}
	off := ftyp.Size() + moov.Size() + mdatHdr
	for _, c := range chunks {
		c.off = off
		off += uint64(c.size)
	}
	moov, dur := build(co64)
	if err := ftyp.Encode(w); err != nil {
		return 0, err
	}
	if err := moov.Encode(w); err != nil {
		return 0, err
	}
	hdr := make([]byte, 0, 16)
	if mdatHdr == 8 {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(payload+8))
		hdr = append(hdr, "mdat"...)
	} else {
		hdr = binary.BigEndian.AppendUint32(hdr, 1)
		hdr = append(hdr, "mdat"...)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(payload+16))
	}
	if _, err := w.Write(hdr); err != nil {
		return 0, err
	}
	for _, c := range chunks {
		b, err := readAt(dir, c.seg)
		if err != nil {
			return 0, err
		}
		var n int64
		err = fragments(b, func(_ *mp4.MoofBox, mdat *mp4.MdatBox) error {
			k, err := w.Write(mdat.Data)
			n += int64(k)
			return err
		})
		if err != nil {
			return 0, err
		}
		if n != c.size {
			return 0, fmt.Errorf("segment %s changed while writing the MP4", c.seg.Key)
		}
	}
	return dur, nil
}
