package packager

import (
	"bytes"
	"encoding/xml"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/whipcast/whipcast/media"
)

// The MPD is written with encoding/xml from the structs below, which follow
// the element and attribute order of the MPD schema (ISO/IEC 23009-1:2022
// Annex B). It is rendered once per change and the bytes shared by every
// request until the next change.

// Profiles: ISOBMFF live (ISO/IEC 23009-1 8.4), CMAF (8.12) and the
// DASH-IF low-latency profile (DASH-IF IOP v5 part 5 / low-latency modes).
const (
	dashProfiles   = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
	dashProfilesLL = dashProfiles + ",http://www.dashif.org/guidelines/low-latency-live-v5"
	// utcScheme is the UTCTiming scheme of our /time endpoint (5.8.5.7).
	utcScheme = "urn:mpeg:dash:utc:http-iso:2014"
	// utcDirect carries the time in the MPD itself (5.8.5.7), for an MPD
	// served from storage with no clock to ask.
	utcDirect = "urn:mpeg:dash:utc:direct:2014"
	// timeURLMarker stands for the absolute /time URL in the cached MPD; it
	// is replaced per request with the scheme and host the player used.
	timeURLMarker = "whipcast:time-url"
	// audioChannelScheme is AudioChannelConfiguration's scheme (5.8.5.4,
	// ISO/IEC 23003-3 channel counts).
	audioChannelScheme = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
)

type mpdXML struct {
	XMLName                    xml.Name            `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Profiles                   string              `xml:"profiles,attr"`
	Type                       string              `xml:"type,attr"`
	AvailabilityStartTime      string              `xml:"availabilityStartTime,attr,omitempty"`
	PublishTime                string              `xml:"publishTime,attr,omitempty"`
	MediaPresentationDuration  string              `xml:"mediaPresentationDuration,attr,omitempty"`
	MinimumUpdatePeriod        string              `xml:"minimumUpdatePeriod,attr,omitempty"`
	MinBufferTime              string              `xml:"minBufferTime,attr"`
	TimeShiftBufferDepth       string              `xml:"timeShiftBufferDepth,attr,omitempty"`
	SuggestedPresentationDelay string              `xml:"suggestedPresentationDelay,attr,omitempty"`
	MaxSegmentDuration         string              `xml:"maxSegmentDuration,attr,omitempty"`
	ServiceDescription         *serviceDescription `xml:"ServiceDescription"`
	Periods                    []periodXML         `xml:"Period"`
	UTCTiming                  *descriptorXML      `xml:"UTCTiming"`
}

// serviceDescription (ISO/IEC 23009-1 Annex K) tells low-latency players
// (dash.js) the latency to aim for and how fast they may catch up.
type serviceDescription struct {
	ID           int          `xml:"id,attr"`
	Latency      latencyXML   `xml:"Latency"`
	PlaybackRate playbackRate `xml:"PlaybackRate"`
}

type latencyXML struct {
	ReferenceID int   `xml:"referenceId,attr"`
	Target      int64 `xml:"target,attr"` // milliseconds
	Max         int64 `xml:"max,attr"`
	Min         int64 `xml:"min,attr"`
}

type playbackRate struct {
	Max float64 `xml:"max,attr"`
	Min float64 `xml:"min,attr"`
}

type descriptorXML struct {
	SchemeIDURI string `xml:"schemeIdUri,attr"`
	Value       string `xml:"value,attr"`
}

type periodXML struct {
	ID             string             `xml:"id,attr"`
	Start          string             `xml:"start,attr"`
	Duration       string             `xml:"duration,attr,omitempty"`
	AdaptationSets []adaptationSetXML `xml:"AdaptationSet"`
}

type adaptationSetXML struct {
	ID                    int                       `xml:"id,attr"`
	ContentType           string                    `xml:"contentType,attr"`
	MimeType              string                    `xml:"mimeType,attr"`
	SegmentAlignment      bool                      `xml:"segmentAlignment,attr"`
	StartWithSAP          int                       `xml:"startWithSAP,attr"`
	ProducerReferenceTime *producerReferenceTimeXML `xml:"ProducerReferenceTime"`
	SegmentTemplate       segmentTemplateXML        `xml:"SegmentTemplate"`
	Representations       []representationXML       `xml:"Representation"`
}

// producerReferenceTimeXML (5.12) ties a media time to the wall clock; the
// ServiceDescription's Latency refers to it. Its UTCTiming names the clock
// of wallClockTime, as in the examples of DASH-IF's "Low-latency Modes for
// DASH" (9.X.4.2): a player that finds none has no clock to compare the
// date with (some then read it on another epoch and report a latency of
// ~4·10⁹ s).
type producerReferenceTimeXML struct {
	ID               int            `xml:"id,attr"`
	Type             string         `xml:"type,attr"`
	WallClockTime    string         `xml:"wallClockTime,attr"`
	PresentationTime uint64         `xml:"presentationTime,attr"`
	UTCTiming        *descriptorXML `xml:"UTCTiming"`
}

type segmentTemplateXML struct {
	Timescale                uint32          `xml:"timescale,attr"`
	PresentationTimeOffset   uint64          `xml:"presentationTimeOffset,attr"`
	Initialization           string          `xml:"initialization,attr"`
	Media                    string          `xml:"media,attr"`
	AvailabilityTimeOffset   string          `xml:"availabilityTimeOffset,attr,omitempty"`
	AvailabilityTimeComplete string          `xml:"availabilityTimeComplete,attr,omitempty"`
	Timeline                 segmentTimeline `xml:"SegmentTimeline"`
}

type segmentTimeline struct {
	S []sXML `xml:"S"`
}

// sXML is one SegmentTimeline entry (5.3.9.6): @t where the timeline is not
// contiguous, @d, and @r for repeats of the same duration.
type sXML struct {
	T *uint64 `xml:"t,attr"`
	D uint64  `xml:"d,attr"`
	R int     `xml:"r,attr,omitempty"`
}

type representationXML struct {
	ID                string         `xml:"id,attr"`
	Bandwidth         int64          `xml:"bandwidth,attr"`
	Codecs            string         `xml:"codecs,attr"`
	Width             int            `xml:"width,attr,omitempty"`
	Height            int            `xml:"height,attr,omitempty"`
	AudioSamplingRate int            `xml:"audioSamplingRate,attr,omitempty"`
	AudioChannels     *descriptorXML `xml:"AudioChannelConfiguration"`
}

// renderMPD renders the MPD. Called with s.mu held.
func (s *dashStream) renderMPD() []byte {
	set := &s.d.set
	ll := !set.DisableLowLatency
	m := mpdXML{
		Profiles:      dashProfiles,
		Type:          "dynamic",
		PublishTime:   isoTime(s.changed),
		MinBufferTime: isoDuration(set.tm.PartTarget * 5),
		UTCTiming:     &descriptorXML{SchemeIDURI: utcScheme, Value: timeURLMarker},
	}
	if ll {
		m.Profiles = dashProfilesLL
	}
	if s.direct {
		m.UTCTiming = &descriptorXML{SchemeIDURI: utcDirect, Value: isoTime(s.changed)}
	}
	if s.ended {
		// 5.4.1: a presentation that will not change is static; its length
		// is where the last Period ends.
		m.Type = "static"
		if n := len(s.periods); n > 0 {
			m.MediaPresentationDuration = isoDuration(s.periods[n-1].end())
		}
		if !s.ast.IsZero() {
			m.AvailabilityStartTime = isoTime(s.ast)
		}
	} else {
		m.AvailabilityStartTime = isoTime(s.ast)
		// The MPD changes with every segment (and, low-latency, with every
		// announcement of the one in production): players reload it often.
		m.MinimumUpdatePeriod = isoDuration(max(set.tm.PartTarget, 500*time.Millisecond))
		m.TimeShiftBufferDepth = isoDuration(seconds(float64(set.Window) * max(s.maxSeg, set.tm.SegmentTarget.Seconds())))
		m.SuggestedPresentationDelay = isoDuration(set.TargetLatency)
		m.MaxSegmentDuration = isoDuration(seconds(math.Ceil(max(s.maxSeg, set.tm.SegmentTarget.Seconds()))))
		if ll {
			target := set.TargetLatency.Milliseconds()
			m.ServiceDescription = &serviceDescription{
				Latency: latencyXML{Target: target, Min: target * 6 / 10, Max: max(target*2, 6000)},
				// Players catch up by playing up to 20 % faster (10 % slower when
				// too close): at 4 % dash.js took ~40 s to close a 1.5 s gap at
				// start, at 20 % it is within the target after ~8 s.
				PlaybackRate: playbackRate{Min: 0.9, Max: 1.2},
			}
		}
	}
	// A new Period is shown once each of its tracks has something to list
	// (and it has the tracks of the Period before): a Period without an
	// AdaptationSet, or without its audio yet, stops dash.js (it no longer
	// finishes its manifest update, or waits on the missing track). Until
	// then the Period before is shown as the last one, without @duration.
	shown := s.periods
	// And none is shown first without every track of its publish: dash.js
	// makes its SourceBuffers from the first Period it plays and cannot add
	// one at the next (QuotaExceededError, then a stall for good). Such a
	// Period comes when a keyframe with a new SPS cuts one before the
	// audio's first frame (the transcode starts after the video it goes
	// with): it is left out once a later one has every track.
	for i, per := range shown {
		if s.complete(per) {
			shown = shown[i:]
			break
		}
	}
	if n := len(shown); n > 1 && !s.ended && !s.listable(shown[n-1], len(shown[n-2].tracks), ll) {
		shown = shown[:n-1]
	}
	for i, per := range shown {
		m.Periods = append(m.Periods, s.periodXML(per, ll && !s.ended, m.UTCTiming, i == len(shown)-1 && !s.ended))
	}
	b, err := xml.MarshalIndent(&m, "", " ")
	if err != nil { // the structs above always marshal
		return nil
	}
	return append(append([]byte(xml.Header), b...), '\n')
}

// periodXML renders one Period: an AdaptationSet per track, addressed by
// $Time$ with a SegmentTimeline whose @t and @d are the fragments' own tfdt
// and durations, so players and the bytes agree exactly.
//
// Only the open Period announces a segment in production, and only once
// its first chunk exists: until then the transmuxer may still cut it into
// a new Period (an init change or a reconnect at that keyframe), and an
// announcement in the old Period would send players to media under the
// old init. A closed Period gets @duration, the sum of its segments.
func (s *dashStream) periodXML(per *dashPeriod, live bool, utc *descriptorXML, last bool) periodXML {
	set := &s.d.set
	p := periodXML{ID: per.id, Start: isoDurationExact(per.start)}
	if per.duration > 0 && !s.open(per) && !last {
		p.Duration = isoDurationExact(per.duration)
	}
	announce := live && s.open(per)
	for i, t := range per.tracks {
		in := t.init
		ts := uint64(in.Timescale)
		pto := per.pto(ts)
		as := adaptationSetXML{
			ID:               i,
			ContentType:      t.t.Kind.String(),
			MimeType:         contentType(t.t.Kind),
			SegmentAlignment: true,
			StartWithSAP:     1,
			SegmentTemplate: segmentTemplateXML{
				Timescale:              in.Timescale,
				PresentationTimeOffset: pto,
				Initialization:         dashInitName(t.name, per.epoch, in.Version),
				Media:                  dashMediaTemplate(t.name, per.epoch, per.firstMSN),
			},
		}
		var tl []sXML
		var end uint64
		add := func(start, d uint64) {
			if n := len(tl); n > 0 && end == start && tl[n-1].D == d {
				tl[n-1].R++
			} else {
				e := sXML{D: d}
				if n == 0 || end != start {
					st := start
					e.T = &st
				}
				tl = append(tl, e)
			}
			end = start + d
		}
		for _, seg := range t.segs {
			add(seg.BaseMediaDecodeTime, seg.Duration)
		}
		if announce && len(t.parts) > 0 && t.parts[0].BaseMediaDecodeTime == t.next {
			// DASH-IF low-latency: the segment in production is announced
			// so that dash.js fetches it chunked. It asks for the segment
			// after it at the announced end, so the estimate must not fall
			// short of the final duration (the segment would be fetched
			// twice) and should not pass it by much (players compare the
			// two): the longest of the last few segments, which is what a
			// regular keyframe interval gives again, at least what is there
			// plus one chunk, the target before any segment. The next MPD
			// has the exact value. Its chunks are available as they are
			// made: availabilityTimeOffset = target - one chunk (5.3.9.5.3),
			// and availabilityTimeComplete=false tells the player to fetch
			// it chunked.
			var have uint64
			for _, pt := range t.parts {
				have += pt.Duration
			}
			part := uint64(set.tm.PartTarget.Seconds() * float64(ts))
			add(t.next, max(t.typicalDuration(uint64(set.tm.SegmentTarget.Seconds()*float64(ts))), have+part))
		}
		if live {
			as.SegmentTemplate.AvailabilityTimeOffset = strconv.FormatFloat((set.tm.SegmentTarget - set.tm.PartTarget).Seconds(), 'f', -1, 64)
			as.SegmentTemplate.AvailabilityTimeComplete = "false"
			as.ProducerReferenceTime = &producerReferenceTimeXML{
				Type: "encoder", WallClockTime: isoTime(s.ast.Add(per.start)), PresentationTime: pto, UTCTiming: utc,
			}
		}
		if len(tl) == 0 {
			continue
		}
		as.SegmentTemplate.Timeline.S = tl
		rep := representationXML{
			ID:        t.name,
			Bandwidth: int64(math.Ceil(max(t.peakBitrate(), 1))),
			Codecs:    in.Codec,
		}
		if t.t.Kind == media.KindVideo {
			rep.Width, rep.Height = in.Width, in.Height
		} else {
			rep.AudioSamplingRate = in.SampleRate
			rep.AudioChannels = &descriptorXML{SchemeIDURI: audioChannelScheme, Value: strconv.Itoa(in.Channels)}
		}
		as.Representations = []representationXML{rep}
		p.AdaptationSets = append(p.AdaptationSets, as)
	}
	return p
}

// listable reports whether per has at least want tracks and each has a
// segment to list: a complete one, or with ll the one in production once it
// has a chunk. Called with s.mu held.
func (s *dashStream) listable(per *dashPeriod, want int, ll bool) bool {
	if len(per.tracks) < want {
		return false
	}
	for _, t := range per.tracks {
		inProd := ll && s.open(per) && len(t.parts) > 0 && t.parts[0].BaseMediaDecodeTime == t.next
		if len(t.segs) == 0 && !inProd {
			return false
		}
	}
	return true
}

// typicalSegments is how many recent segments typicalDuration looks at.
const typicalSegments = 3

// typicalDuration is the longest of the track's last few segments, or
// fallback before any. A stream's short first segment (transmux
// Segment.Short, cut early so players start sooner) does not count: it says
// nothing about the keyframe interval, and the segment after it, announced
// that short, would be asked for again at its estimated end.
func (t *dashTrack) typicalDuration(fallback uint64) uint64 {
	var d uint64
	for _, seg := range t.segs[max(len(t.segs)-typicalSegments, 0):] {
		if !seg.Short {
			d = max(d, seg.Duration)
		}
	}
	if d == 0 {
		return fallback
	}
	return d
}

// peakBitrate is the highest segment bitrate in the window, bits/s.
func (t *dashTrack) peakBitrate() float64 {
	peak := 0.0
	for _, seg := range t.segs {
		if d := seg.Seconds(); d > 0 {
			peak = max(peak, float64(seg.Size)*8/d)
		}
	}
	return peak
}

// withTimeURL puts the absolute UTCTiming URL into a rendered MPD: players
// fetch it as is, not relative to the MPD.
func withTimeURL(b []byte, r *http.Request, path string) []byte {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	host := strings.Map(func(c rune) rune {
		if c == '"' || c == '<' || c == '&' || c < ' ' {
			return -1
		}
		return c
	}, r.Host)
	return bytes.ReplaceAll(b, []byte(timeURLMarker), []byte(scheme+"://"+host+path))
}

// isoTime is an xs:dateTime in UTC with milliseconds.
func isoTime(t time.Time) string { return t.UTC().Format(isoMillis) }

const isoMillis = "2006-01-02T15:04:05.000Z"

// isoDurationExact is an xs:duration in seconds with microseconds, for
// Period@start and @duration: a Period ends where its media does, to the
// tick of a 90 kHz timescale (11 µs) rather than to the millisecond.
func isoDurationExact(d time.Duration) string {
	us := d.Round(time.Microsecond).Microseconds()
	return "PT" + strconv.FormatFloat(float64(us)/1e6, 'f', -1, 64) + "S"
}

// isoDuration is an xs:duration in seconds with milliseconds, "PT2.5S".
func isoDuration(d time.Duration) string {
	ms := d.Milliseconds()
	return "PT" + strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) + "S"
}
