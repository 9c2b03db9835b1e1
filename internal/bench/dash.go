package bench

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The few MPD elements the DASH reader needs (ISO/IEC 23009-1 5.3);
// encoding/xml matches them in any namespace.
type mpd struct {
	AvailabilityStartTime string   `xml:"availabilityStartTime,attr"`
	MinimumUpdatePeriod   string   `xml:"minimumUpdatePeriod,attr"`
	BaseURL               string   `xml:"BaseURL"`
	Periods               []period `xml:"Period"`
}

type period struct {
	Start          string          `xml:"start,attr"`
	AdaptationSets []adaptationSet `xml:"AdaptationSet"`
}

type adaptationSet struct {
	ContentType     string           `xml:"contentType,attr"`
	MimeType        string           `xml:"mimeType,attr"`
	SegmentTemplate *segmentTemplate `xml:"SegmentTemplate"`
	Representations []representation `xml:"Representation"`
}

type representation struct {
	ID              string           `xml:"id,attr"`
	SegmentTemplate *segmentTemplate `xml:"SegmentTemplate"`
}

type segmentTemplate struct {
	Timescale              uint64 `xml:"timescale,attr"`
	PresentationTimeOffset uint64 `xml:"presentationTimeOffset,attr"`
	StartNumber            *int   `xml:"startNumber,attr"`
	Initialization         string `xml:"initialization,attr"`
	Media                  string `xml:"media,attr"`
	Timeline               []struct {
		T *uint64 `xml:"t,attr"`
		D uint64  `xml:"d,attr"`
		R int     `xml:"r,attr"`
	} `xml:"SegmentTimeline>S"`
}

// dashSegment is the newest segment of an MPD's video: its URLs and the
// wall time it ends at; prevEnd is where the one before it ends (a
// low-latency MPD lists the segment in production, whose end is still to
// come).
type dashSegment struct {
	init, media  string
	end, prevEnd time.Time
}

// newestVideo finds the last Period's video AdaptationSet and the last
// segment of its SegmentTimeline.
func newestVideo(m *mpd) (dashSegment, error) {
	if len(m.Periods) == 0 {
		return dashSegment{}, fmt.Errorf("%w: MPD without a Period", ErrPlaylist)
	}
	p := m.Periods[len(m.Periods)-1]
	for _, as := range p.AdaptationSets {
		if as.ContentType != "video" && !strings.HasPrefix(as.MimeType, "video/") || len(as.Representations) == 0 {
			continue
		}
		rep := as.Representations[0]
		st := rep.SegmentTemplate
		if st == nil {
			st = as.SegmentTemplate
		}
		if st == nil || len(st.Timeline) == 0 {
			return dashSegment{}, fmt.Errorf("%w: no SegmentTimeline", ErrPlaylist)
		}
		number := 1
		if st.StartNumber != nil {
			number = *st.StartNumber
		}
		var t, d, prevEnd uint64
		n := number - 1
		for i, s := range st.Timeline {
			if s.T != nil {
				t = *s.T
			} else if i > 0 {
				t += d
			}
			if i > 0 || s.R > 0 {
				prevEnd = t + uint64(s.R)*s.D // the start of this S's last repeat
			}
			d = s.D
			t += uint64(s.R) * d // the last repeat
			n += s.R + 1
		}
		fill := func(tmpl string) string {
			return strings.NewReplacer("$RepresentationID$", rep.ID, "$Time$", strconv.FormatUint(t, 10),
				"$Number$", strconv.Itoa(n)).Replace(tmpl)
		}
		seg := dashSegment{init: fill(st.Initialization), media: fill(st.Media)}
		if ast, err := time.Parse(time.RFC3339, m.AvailabilityStartTime); err == nil && st.Timescale > 0 {
			start, _ := parseISODuration(p.Start)
			at := func(mt uint64) time.Time {
				return ast.Add(start + time.Duration(float64(mt-st.PresentationTimeOffset)/float64(st.Timescale)*float64(time.Second)))
			}
			seg.end = at(t + d)
			if prevEnd > 0 {
				seg.prevEnd = at(prevEnd)
			}
		}
		return seg, nil
	}
	return dashSegment{}, fmt.Errorf("%w: no video AdaptationSet", ErrPlaylist)
}

// parseISODuration reads the xs:duration forms MPDs use: PT#H#M#S (the
// seconds may have a fraction), with an optional #D before the T.
func parseISODuration(s string) (time.Duration, error) {
	rest, ok := strings.CutPrefix(s, "P")
	if !ok {
		return 0, fmt.Errorf("%w: duration %q", ErrPlaylist, s)
	}
	var d time.Duration
	inTime := false
	num := ""
	for _, c := range rest {
		switch {
		case c == 'T':
			inTime = true
		case c >= '0' && c <= '9' || c == '.':
			num += string(c)
		default:
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: duration %q", ErrPlaylist, s)
			}
			unit := map[rune]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second}[c]
			if !inTime {
				unit = map[rune]time.Duration{'D': 24 * time.Hour}[c]
			}
			if unit == 0 {
				return 0, fmt.Errorf("%w: duration %q", ErrPlaylist, s)
			}
			d += time.Duration(v * float64(unit))
			num = ""
		}
	}
	if num != "" {
		return 0, fmt.Errorf("%w: duration %q", ErrPlaylist, s)
	}
	return d, nil
}

// dashReader polls one stream's MPD at its minimumUpdatePeriod and fetches
// the init segment once and then the newest video segment whenever a new
// one is listed.
type dashReader struct {
	get  getter
	url  string
	post time.Time
	res  readerResult
}

func newDASHReader(client *http.Client, u string, post time.Time) *dashReader {
	r := &dashReader{url: u, post: post}
	r.get = getter{client: client, res: &r.res}
	return r
}

func (r *dashReader) run(ctx context.Context) readerResult {
	var lastInit, lastMedia string
	for ctx.Err() == nil {
		wait := time.Second
		b, err := r.get.get(ctx, r.url)
		var m mpd
		if err == nil {
			err = xml.Unmarshal(b, &m)
		}
		var seg dashSegment
		if err == nil {
			seg, err = newestVideo(&m)
		}
		if err != nil {
			if r.res.First == 0 { // not published yet
				if ctx.Err() == nil {
					r.res.Err = err.Error()
				}
				sleep(ctx, retryWait)
				continue
			}
			r.get.fail(ctx, err)
			sleep(ctx, wait)
			continue
		}
		if d, err := parseISODuration(m.MinimumUpdatePeriod); err == nil && d > 0 {
			wait = max(d, 200*time.Millisecond)
		}
		// The packaging delay is the age of the newest complete segment.
		if end := seg.end; !end.IsZero() {
			if now := time.Now(); end.After(now) && !seg.prevEnd.IsZero() {
				end = seg.prevEnd
			}
			r.res.Delays = append(r.res.Delays, time.Since(end))
		}
		base := r.url
		if m.BaseURL != "" {
			if u, err := resolve(r.url, m.BaseURL); err == nil {
				base = u
			}
		}
		if seg.init != lastInit {
			if u, err := resolve(base, seg.init); err == nil {
				if _, err := r.get.get(ctx, u); err != nil {
					r.get.fail(ctx, err)
				} else {
					lastInit = seg.init
				}
			}
		}
		if seg.media != lastMedia {
			if u, err := resolve(base, seg.media); err == nil {
				before := r.res.Fetches
				r.get.media(ctx, u, r.post)
				if r.res.Fetches > before {
					lastMedia = seg.media
					if r.res.Err != "" && r.res.Errors == 0 {
						r.res.Err = ""
					}
				}
			}
		}
		sleep(ctx, wait)
	}
	return r.res
}
