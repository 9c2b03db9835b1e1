package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// hlsReader plays one stream's HLS as a low-latency player does: the
// multivariant playlist, then the first variant's (video) media playlist
// reloaded with blocking requests (_HLS_msn/_HLS_part) when the server
// can block, or every half target duration when it cannot; the init
// segment once, then every new part (or segment, without parts) from the
// live edge on.
type hlsReader struct {
	get  getter
	url  string    // multivariant (or media) playlist
	post time.Time // the WHIP POST, for the first-segment time
	res  readerResult
}

func newHLSReader(client *http.Client, u string, post time.Time) *hlsReader {
	r := &hlsReader{url: u, post: post}
	r.get = getter{client: client, res: &r.res}
	return r
}

// pos is a place in a media playlist: a segment's MSN and a part index;
// wholeSeg as part is the segment itself, after its parts.
type pos struct {
	msn, part int
}

const wholeSeg = math.MaxInt

func (a pos) after(b pos) bool { return a.msn > b.msn || a.msn == b.msn && a.part > b.part }

// item is one fetchable piece of a media playlist.
type item struct {
	at  pos
	uri string
}

// items lists a media playlist's parts and segments in order: a segment's
// parts, then the segment; then the parts of the segment in production.
func items(m *playlist.Media) []item {
	var out []item
	for i, s := range m.Segments {
		msn := m.MediaSequence + i
		for j, p := range s.Parts {
			out = append(out, item{pos{msn, j}, p.URI})
		}
		out = append(out, item{pos{msn, wholeSeg}, s.URI})
	}
	msn := m.MediaSequence + len(m.Segments)
	for j, p := range m.Parts {
		out = append(out, item{pos{msn, j}, p.URI})
	}
	return out
}

// livePos is where a player joining now starts, given as the position just
// before it: the segment in production when parts are listed (its first
// part is independent), else the newest segment.
func livePos(m *playlist.Media) pos {
	start := m.MediaSequence + len(m.Segments)
	if len(m.Parts) == 0 {
		start--
	}
	return pos{start - 1, wholeSeg}
}

// toFetch picks what a player that has everything up to last fetches next:
// parts after last, and whole segments only when none of their parts was
// fetched (a segment listed without parts, or a playlist without parts).
func toFetch(m *playlist.Media, last pos) []item {
	var out []item
	for _, it := range items(m) {
		if it.at.part == wholeSeg {
			if it.at.msn > last.msn {
				out = append(out, it)
			}
			continue
		}
		if it.at.after(last) {
			out = append(out, it)
		}
	}
	// A segment whose parts are listed is fetched as parts: drop the whole
	// segment when a part of it is on the list.
	keep := out[:0]
	for i, it := range out {
		if it.at.part == wholeSeg && i > 0 && out[i-1].at.msn == it.at.msn {
			continue
		}
		keep = append(keep, it)
	}
	return keep
}

// nextBlock is the _HLS_msn/_HLS_part of the next blocking reload: the part
// after the last one listed (RFC 8216bis 6.2.5.2).
func nextBlock(m *playlist.Media) (msn, part int, withPart bool) {
	msn = m.MediaSequence + len(m.Segments)
	if m.PartInf == nil {
		return msn, 0, false
	}
	return msn, len(m.Parts), true
}

// newestEnd is the wall time the newest listed media ends at, from the
// last PROGRAM-DATE-TIME and the durations after it.
func newestEnd(m *playlist.Media) (time.Time, bool) {
	var t time.Time
	for _, s := range m.Segments {
		if s.DateTime != nil {
			t = *s.DateTime
		}
		if !t.IsZero() {
			t = t.Add(s.Duration)
		}
	}
	if t.IsZero() {
		return t, false
	}
	for _, p := range m.Parts {
		t = t.Add(p.Duration)
	}
	return t, true
}

// blockingURL adds the blocking-reload query to a media playlist URL.
func blockingURL(u string, msn, part int, withPart bool) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	q := "_HLS_msn=" + strconv.Itoa(msn)
	if withPart {
		q += "&_HLS_part=" + strconv.Itoa(part)
	}
	return u + sep + q
}

// run reads until ctx ends or the playlist ends.
func (r *hlsReader) run(ctx context.Context) readerResult {
	mediaURL, m := r.media(ctx)
	if m == nil {
		return r.res
	}
	if m.Map != nil {
		if u, err := resolve(mediaURL, m.Map.URI); err == nil {
			if _, err := r.get.get(ctx, u); err != nil {
				r.get.fail(ctx, err)
			}
		}
	}
	last := livePos(m)
	for ctx.Err() == nil {
		if end, ok := newestEnd(m); ok {
			r.res.Delays = append(r.res.Delays, time.Since(end))
		}
		for _, it := range toFetch(m, last) {
			u, err := resolve(mediaURL, it.uri)
			if err != nil {
				r.get.fail(ctx, err)
				continue
			}
			r.get.media(ctx, u, r.post)
			last = it.at
		}
		if m.Endlist {
			return r.res
		}
		next := mediaURL
		if m.ServerControl != nil && m.ServerControl.CanBlockReload {
			msn, part, withPart := nextBlock(m)
			next = blockingURL(mediaURL, msn, part, withPart)
		} else if !sleep(ctx, time.Duration(m.TargetDuration)*time.Second/2) {
			break
		}
		nm, err := r.load(ctx, next)
		if err != nil {
			r.get.fail(ctx, err)
			if !sleep(ctx, retryWait) {
				break
			}
			continue
		}
		m = nm
	}
	return r.res
}

// media loads the multivariant playlist (retrying while the stream is not
// there yet) and then the first variant's media playlist.
func (r *hlsReader) media(ctx context.Context) (string, *playlist.Media) {
	u := r.url
	for ctx.Err() == nil {
		b, err := r.get.get(ctx, u)
		var pl playlist.Playlist
		if err == nil {
			pl, err = playlist.Unmarshal(b)
		}
		switch p := pl.(type) {
		case *playlist.Media:
			if err == nil {
				r.res.Err = ""
				return u, p
			}
		case *playlist.Multivariant:
			if err == nil && len(p.Variants) == 0 {
				err = fmt.Errorf("%w: no variant in %s", ErrPlaylist, u)
			}
			if err == nil {
				if u, err = resolve(u, p.Variants[0].URI); err == nil {
					continue
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			r.res.Err = err.Error() // not counted: waiting for the publish
		}
		sleep(ctx, retryWait)
	}
	return "", nil
}

func (r *hlsReader) load(ctx context.Context, u string) (*playlist.Media, error) {
	b, err := r.get.get(ctx, u)
	if err != nil {
		return nil, err
	}
	pl, err := playlist.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	m, ok := pl.(*playlist.Media)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a media playlist", ErrPlaylist, u)
	}
	return m, nil
}
