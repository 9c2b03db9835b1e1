package transmux

import (
	"io"
	"net"
	"time"

	"github.com/whipcast/whipcast/media"
)

// Init is the CMAF header (ftyp + moov) of one track (CMAF: one track per
// file, track_ID 1). Every field is immutable once handed to a Sink and may be
// shared by any number of consumers.
type Init struct {
	// Track is the stream track this init describes.
	Track *media.Track
	// Version counts init changes on this track, from 0. A new Version comes
	// with a new Config (new SPS/PPS) and starts a discontinuity.
	Version int
	// Codec is the RFC 6381 codecs value as HLS CODECS and DASH @codecs want
	// it: "avc1.PPCCLL" for H.264, "opus" for Opus, "mp4a.40.N" for AAC.
	Codec string
	// Timescale is the track timescale (mdhd) of every time in Parts and
	// Segments of this track: 90000 for video, the sample rate for audio.
	Timescale uint32
	// Width and Height are the picture size (video only).
	Width, Height int
	// SampleRate and Channels describe audio (audio only).
	SampleRate, Channels int
	// Data is the encoded init segment.
	Data []byte
}

// Part is one CMAF chunk of one track: a single moof + mdat. In LL-HLS it is
// a Partial Segment; in low-latency DASH a chunk of a segment. The bytes are
// Header followed by every slice of Payload; Payload slices are the frames'
// own Data (never copied), so a Part costs only its Header.
type Part struct {
	// Init is the init segment the part decodes with.
	Init *Init
	// MSN is the sequence number of the segment the part belongs to. The same
	// MSN on two tracks covers the same stream time range.
	MSN uint64
	// Index is the part's index inside its segment, from 0.
	Index int
	// BaseMediaDecodeTime is the tfdt of the part, in Init.Timescale.
	BaseMediaDecodeTime uint64
	// Duration is the sum of the sample durations, in Init.Timescale.
	Duration uint64
	// Samples is the number of samples in the part.
	Samples int
	// Independent is true when the first sample is a sync sample (a video
	// keyframe; every audio part).
	Independent bool
	// Discontinuity is true on the first part of a segment that starts a
	// discontinuity (Segment.Discontinuity), so a live playlist can show the
	// tag before the segment is complete.
	Discontinuity bool
	// Time is the wall-clock time of the part's first sample
	// (media.Frame.Time), for a playlist that dates a segment before it is
	// complete.
	Time time.Time
	// Header is the moof box followed by the mdat box header.
	Header []byte
	// Payload is the mdat body: the samples' data in decode order.
	Payload [][]byte
	// Size is the part's total length in bytes.
	Size int64
}

// Seconds returns the part's duration in seconds.
func (p *Part) Seconds() float64 { return float64(p.Duration) / float64(p.Init.Timescale) }

// Buffers returns the part's bytes as a fresh net.Buffers (the slice of
// slices is new, the bytes are shared), ready for net.Buffers.WriteTo.
func (p *Part) Buffers() net.Buffers {
	b := make(net.Buffers, 0, 1+len(p.Payload))
	return p.appendBuffers(b)
}

func (p *Part) appendBuffers(b net.Buffers) net.Buffers {
	b = append(b, p.Header)
	return append(b, p.Payload...)
}

// WriteTo writes the part's bytes to w, gathered into as few Writes as
// possible (write.go): one for a part up to 256 KiB.
func (p *Part) WriteTo(w io.Writer) (int64, error) {
	g := newGatherWriter(w)
	p.gather(g)
	return g.close()
}

// Segment is one CMAF segment of one track: its Parts, in order. A segment
// with no Parts is a gap (the track had no samples in that time range); it
// still carries its MSN so that tracks stay aligned.
type Segment struct {
	// Init is the init segment the segment decodes with.
	Init *Init
	// MSN is the segment's sequence number, shared by all tracks for the same
	// time range.
	MSN uint64
	// BaseMediaDecodeTime is the decode time of the first sample, in
	// Init.Timescale (DASH SegmentTimeline @t).
	BaseMediaDecodeTime uint64
	// Duration is the segment duration in Init.Timescale (DASH @d).
	Duration uint64
	// Time is the wall-clock time of the first sample (media.Frame.Time), for
	// EXT-X-PROGRAM-DATE-TIME. Zero for a gap.
	Time time.Time
	// Discontinuity is true for the first segment after an init change (on
	// any track, so every track marks the same MSN).
	Discontinuity bool
	// Short is true for a stream's first segment when it was cut early, at
	// the first keyframe after Settings.FirstSegment, so players can start
	// before a whole keyframe interval has passed (set on every track's
	// segment of that MSN). Its duration says nothing about the keyframe
	// interval: estimates of the next segment's length must not use it.
	Short bool
	// Parts are the segment's chunks; the segment's bytes are theirs, in order.
	Parts []*Part
	// Size is the segment's total length in bytes.
	Size int64
}

// Seconds returns the segment's duration in seconds.
func (s *Segment) Seconds() float64 { return float64(s.Duration) / float64(s.Init.Timescale) }

// Gap reports whether the segment has no samples.
func (s *Segment) Gap() bool { return len(s.Parts) == 0 }

// Buffers returns the segment's bytes as a fresh net.Buffers sharing the
// parts' memory.
func (s *Segment) Buffers() net.Buffers {
	n := 0
	for _, p := range s.Parts {
		n += 1 + len(p.Payload)
	}
	b := make(net.Buffers, 0, n)
	for _, p := range s.Parts {
		b = p.appendBuffers(b)
	}
	return b
}

// WriteTo writes the segment's bytes to w in Writes of up to 256 KiB
// (write.go).
func (s *Segment) WriteTo(w io.Writer) (int64, error) {
	g := newGatherWriter(w)
	for _, p := range s.Parts {
		p.gather(g)
	}
	return g.close()
}

// Sink receives a Transmuxer's output, on the Transmuxer's goroutine, in
// order. Methods must not block: every sink of a stream shares that
// goroutine, so one that waits stalls the others and the live playlists.
// A sink with slow work (a disk, a network) hands it to its own goroutine
// through a bounded queue and, when the queue is full, cuts itself off
// from the live stream rather than wait (outputs/recorder, outputs/origin).
// Everything handed over is immutable and may be kept.
//
// For each track: OnInit comes before the first OnPart that uses it; OnPart
// for every part, as soon as it is complete; OnSegment once the segment's
// last part has been given. OnEnd comes once, last.
type Sink interface {
	OnInit(*Init)
	OnPart(*Part)
	OnSegment(*Segment)
	// OnEnd reports the end of the stream: nil for a normal end
	// (media.ErrStreamEnded), else why the transmuxer stopped. Everything
	// pending was flushed before.
	OnEnd(err error)
}
