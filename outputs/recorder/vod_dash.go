package recorder

import (
	"encoding/xml"
	"fmt"
	"path"
)

// A static DASH MPD (ISO/IEC 23009-1) over the recorded CMAF segments. It is
// kept apart from the live MPD of packager/: a recording needs none of the
// live attributes (availabilityStartTime, timeShiftBufferDepth), and names
// its segments one by one with SegmentList (5.3.9.3) so that segment numbers
// with gaps need no template. A track whose init segment changed lists only
// the segments of its first init (a new Period per init change is left for
// the merge with the live MPD); the HLS playlists and the MP4 carry them all.

const dashManifest = "manifest.mpd"

type mpd struct {
	XMLName  xml.Name  `xml:"MPD"`
	XMLNS    string    `xml:"xmlns,attr"`
	Profiles string    `xml:"profiles,attr"`
	Type     string    `xml:"type,attr"`
	Duration string    `xml:"mediaPresentationDuration,attr"`
	MinBuf   string    `xml:"minBufferTime,attr"`
	Period   mpdPeriod `xml:"Period"`
}

type mpdPeriod struct {
	ID    string   `xml:"id,attr"`
	Start string   `xml:"start,attr"`
	Sets  []mpdSet `xml:"AdaptationSet"`
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
		Period:   mpdPeriod{ID: "0", Start: "PT0S"},
	}
	for _, t := range tracks {
		if len(t.inits) == 0 || len(t.segs) == 0 {
			continue
		}
		in := t.inits[0]
		r := mpdRepr{ID: t.name, Codecs: in.Codec, Bandwidth: t.bandwidth()}
		if t.kind == "video" {
			r.Width, r.Height = in.Width, in.Height
		} else {
			r.SampleRate = in.SampleRate
		}
		r.List = mpdList{
			Timescale: in.Timescale,
			PTO:       uint64(start * float64(in.Timescale)),
			Init:      mpdURL{Source: path.Base(in.Key)},
		}
		for _, s := range t.segs {
			if s.Version != in.Version {
				break
			}
			r.List.Timeline = append(r.List.Timeline, mpdS{T: s.BMDT, D: s.Dur})
			r.List.URLs = append(r.List.URLs, mpdSURL{Media: path.Base(s.Key)})
		}
		m.Period.Sets = append(m.Period.Sets, mpdSet{ContentType: t.kind, MimeType: t.kind + "/mp4", Aligned: true, Rep: r})
	}
	out, err := xml.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

func isoDuration(sec float64) string { return fmt.Sprintf("PT%.3fS", sec) }
