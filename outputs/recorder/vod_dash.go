package recorder

import (
	"encoding/xml"
	"fmt"
	"path"
	"sort"
)

// A static DASH MPD (ISO/IEC 23009-1) over the recorded CMAF segments. It is
// kept apart from the live MPD of packager/: a recording needs none of the
// live attributes (availabilityStartTime, timeShiftBufferDepth), and names
// its segments one by one with SegmentList (5.3.9.3) so that segment numbers
// with gaps need no template. Each discontinuity (an init change, a resumed
// publish) starts a new Period (5.3.2), as in the live MPD: a player then
// reinitialises its decoder with that Period's init; every Period but the
// last has @duration, the length of its first track's segments, and the
// next starts there.

const dashManifest = "manifest.mpd"

type mpd struct {
	XMLName  xml.Name    `xml:"MPD"`
	XMLNS    string      `xml:"xmlns,attr"`
	Profiles string      `xml:"profiles,attr"`
	Type     string      `xml:"type,attr"`
	Duration string      `xml:"mediaPresentationDuration,attr"`
	MinBuf   string      `xml:"minBufferTime,attr"`
	Periods  []mpdPeriod `xml:"Period"`
}

type mpdPeriod struct {
	ID       string   `xml:"id,attr"`
	Start    string   `xml:"start,attr"`
	Duration string   `xml:"duration,attr,omitempty"`
	Sets     []mpdSet `xml:"AdaptationSet"`
}

type mpdSet struct {
	ContentType string  `xml:"contentType,attr"`
	MimeType    string  `xml:"mimeType,attr"`
	Aligned     bool    `xml:"segmentAlignment,attr"`
	Rep         mpdRepr `xml:"Representation"`
}

type mpdRepr struct {
	ID         string  `xml:"id,attr"`
	Codecs     string  `xml:"codecs,attr"`
	Bandwidth  int     `xml:"bandwidth,attr"`
	Width      int     `xml:"width,attr,omitempty"`
	Height     int     `xml:"height,attr,omitempty"`
	SampleRate int     `xml:"audioSamplingRate,attr,omitempty"`
	List       mpdList `xml:"SegmentList"`
}

type mpdList struct {
	Timescale uint32    `xml:"timescale,attr"`
	PTO       uint64    `xml:"presentationTimeOffset,attr"`
	Init      mpdURL    `xml:"Initialization"`
	Timeline  []mpdS    `xml:"SegmentTimeline>S"`
	URLs      []mpdSURL `xml:"SegmentURL"`
}

type mpdURL struct {
	Source string `xml:"sourceURL,attr"`
}

type mpdSURL struct {
	Media string `xml:"media,attr"`
}

type mpdS struct {
	T uint64 `xml:"t,attr"`
	D uint64 `xml:"d,attr"`
}

// renderMPD writes manifest.mpd; start is the session's earliest media time
// in seconds, so every track is presented from 0 in sync.
func renderMPD(tracks []*trackIndex, start, duration float64) ([]byte, error) {
	m := mpd{
		XMLNS:    "urn:mpeg:dash:schema:mpd:2011",
		Profiles: "urn:mpeg:dash:profile:isoff-main:2011",
		Type:     "static",
		Duration: isoDuration(duration),
		MinBuf:   "PT2S",
	}
	// Period boundaries: the MSN of every segment marked as a
	// discontinuity on any track (the transmuxer marks the same MSN on all).
	cuts := []uint64{0}
	seen := map[uint64]bool{0: true}
	for _, t := range tracks {
		for _, s := range t.segs {
			if s.Disc && !seen[s.MSN] {
				seen[s.MSN] = true
				cuts = append(cuts, s.MSN)
			}
		}
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i] < cuts[j] })
	periodStart := 0.0
	for pi, from := range cuts {
		to := ^uint64(0)
		if pi+1 < len(cuts) {
			to = cuts[pi+1]
		}
		per := mpdPeriod{ID: fmt.Sprint(pi), Start: isoDuration(periodStart)}
		var length float64
		origin := -1.0 // seconds: where the Period's media starts, from its first track
		for _, t := range tracks {
			var segs []entry
			for _, s := range t.segs {
				if s.MSN >= from && s.MSN < to {
					segs = append(segs, s)
				}
			}
			in := t.init(0)
			if len(segs) > 0 {
				in = t.init(segs[0].Version)
			}
			if in == nil || len(segs) == 0 {
				continue
			}
			ts := float64(in.Timescale)
			r := mpdRepr{ID: t.name, Codecs: in.Codec, Bandwidth: t.bandwidth()}
			if t.kind == "video" {
				r.Width, r.Height = in.Width, in.Height
			} else {
				r.SampleRate = in.SampleRate
			}
			r.List = mpdList{
				Timescale: in.Timescale,
				PTO:       uint64((start + periodStart) * ts),
				Init:      mpdURL{Source: path.Base(in.Key)},
			}
			if pi > 0 {
				// The Period's media starts at its first track's first
				// segment, every track at the same time: the time between
				// Periods (a publisher's absence) is not presented.
				if origin < 0 {
					origin = float64(segs[0].BMDT) / ts
					r.List.PTO = segs[0].BMDT
				} else {
					r.List.PTO = uint64(origin * ts)
				}
			}
			for _, s := range segs {
				r.List.Timeline = append(r.List.Timeline, mpdS{T: s.BMDT, D: s.Dur})
				r.List.URLs = append(r.List.URLs, mpdSURL{Media: path.Base(s.Key)})
			}
			if length == 0 {
				last := segs[len(segs)-1]
				length = float64(last.BMDT+last.Dur-r.List.PTO) / ts
			}
			per.Sets = append(per.Sets, mpdSet{ContentType: t.kind, MimeType: t.kind + "/mp4", Aligned: true, Rep: r})
		}
		if len(per.Sets) == 0 {
			continue
		}
		if pi+1 < len(cuts) {
			per.Duration = isoDuration(length)
		}
		m.Periods = append(m.Periods, per)
		periodStart += length
	}
	out, err := xml.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

func isoDuration(sec float64) string { return fmt.Sprintf("PT%.6fS", sec) }
