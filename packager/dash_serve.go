package packager

// The HTTP side of a dashStream: the MPD, init and media segments, chunked.

import (
	"net/http"
	"strconv"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

func (s *dashStream) serveMPD(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	// Like HLS, the first MPD waits for a complete segment, so every player
	// (ffmpeg's too, which knows nothing of chunks) finds one to start from,
	// and for one of every track: dash.js makes its SourceBuffers from the
	// first MPD and cannot add the audio one later. The audio transcode
	// starts after the video it goes with, so a late player's first segment
	// can come before any audio. A track that never comes (a failed
	// transcode) holds the MPD back for StartTimeout only; then the MPD has
	// what there is.
	s.waitStart(r.Context(), func() bool { return s.ended || s.hasSegments() && s.hasComplete() })
	if !s.hasSegments() {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	b := s.mpd
	if b == nil {
		b = s.renderMPD()
		s.mpd = b
	}
	s.mu.Unlock()
	b = withTimeURL(b, r, s.d.set.TimePath)
	h := w.Header()
	h.Set("Content-Type", "application/dash+xml")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

func (s *dashStream) serveInit(w http.ResponseWriter, r *http.Request, req *dashRequest) {
	s.mu.Lock()
	var in *transmux.Init
	for _, per := range s.periods {
		if t := per.trackNamed(req.track); per.epoch == req.epoch && t != nil && t.init.Version == int(req.num) {
			in = t.init
		}
	}
	s.mu.Unlock()
	if in == nil {
		http.NotFound(w, r)
		return
	}
	serveBytes(w, r, contentType(in.Track.Kind), int64(len(in.Data)), func() { _, _ = w.Write(in.Data) })
}

func contentType(k media.Kind) string {
	if k == media.KindAudio {
		return "audio/mp4"
	}
	return "video/mp4"
}

// serveSegment serves a complete segment from the window, or the segment in
// production as a chunked response: the CMAF chunks there are, then each
// new one as the transmuxer makes it, until the segment is complete
// (DASH-IF IOP low-latency 9.X.4.4). Anything else is 404.
func (s *dashStream) serveSegment(w http.ResponseWriter, r *http.Request, req *dashRequest) {
	s.mu.Lock()
	var t *dashTrack
	var seg *transmux.Segment
	var in *dashPeriod
	for _, per := range s.periods {
		if per.epoch != req.epoch || per.firstMSN != req.period {
			continue
		}
		if pt := per.trackNamed(req.track); pt != nil {
			if sg := pt.findSegment(req.num); sg != nil {
				t, seg = pt, sg
			} else if pt.next == req.num && (s.open(per) || len(pt.parts) > 0) {
				// The segment in production, or about to be: only in the
				// open Period. A closed Period's next segment is the first of
				// the next Period, under another URL and maybe another init.
				t = pt
			}
			in = per
		}
	}
	live := t != nil && seg == nil && !s.ended && !s.d.set.DisableLowLatency
	s.mu.Unlock()
	switch {
	case seg != nil:
		serveBytes(w, r, contentType(t.t.Kind), seg.Size, func() { _, _ = seg.WriteTo(w) })
		return
	case !live:
		http.NotFound(w, r)
		return
	}
	s.streamSegment(w, r, in, t, req.num)
}

// findSegment returns the complete segment starting at time tt, or nil.
func (t *dashTrack) findSegment(tt uint64) *transmux.Segment {
	for _, seg := range t.segs {
		if seg.BaseMediaDecodeTime == tt {
			return seg
		}
	}
	return nil
}

// streamSegment writes the segment starting at time tt on t chunk by chunk.
// The response has no length (HTTP/1.1 chunked transfer coding) and is not
// cacheable: it is cut short if the publisher stops mid-segment.
func (s *dashStream) streamSegment(w http.ResponseWriter, r *http.Request, per *dashPeriod, t *dashTrack, tt uint64) {
	rc := http.NewResponseController(w)
	sent := 0
	for {
		var todo []*transmux.Part
		done := false
		s.mu.Lock()
		s.wait(r.Context(), func() bool {
			todo, done = t.partsFrom(tt, sent, s.ended, s.ended || !s.open(per))
			return len(todo) > 0 || done
		})
		s.mu.Unlock()
		if len(todo) == 0 && !done {
			if sent == 0 {
				http.Error(w, "segment not produced in time", http.StatusNotFound)
			}
			return // timed out, client gone or packager closed
		}
		if sent == 0 {
			if len(todo) == 0 {
				http.NotFound(w, r)
				return
			}
			h := w.Header()
			h.Set("Content-Type", contentType(t.t.Kind))
			h.Set("Cache-Control", "no-cache")
			if r.Method == http.MethodHead {
				return
			}
		}
		for _, p := range todo {
			if _, err := p.WriteTo(w); err != nil {
				return
			}
		}
		sent += len(todo)
		_ = rc.Flush()
		if done {
			return
		}
	}
}

// partsFrom returns the parts of the segment starting at tt from index i
// on, and whether that is the last of them; closed means no new segment
// will start on t (the stream ended or a later Period opened), so its next
// segment is not coming under this Period's URL. Called with
// s.mu held.
func (t *dashTrack) partsFrom(tt uint64, i int, ended, closed bool) ([]*transmux.Part, bool) {
	if seg := t.findSegment(tt); seg != nil {
		if i >= len(seg.Parts) {
			return nil, true
		}
		return seg.Parts[i:], true
	}
	if len(t.parts) > 0 && t.parts[0].BaseMediaDecodeTime == tt {
		if i >= len(t.parts) {
			return nil, ended
		}
		return t.parts[i:], ended
	}
	// Not started yet (still next) and the Period goes on: keep waiting.
	if t.next == tt && !closed {
		return nil, false
	}
	return nil, true // left the window, became a gap, or the stream ended
}
