package packager

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// hlsStream is the HLS state of one publish: a window of segments per track,
// fed by the stream's transmuxer (it is the transmux.Sink) and read by HTTP
// handlers. Everything it hands out is immutable.
type hlsStream struct {
	h     *HLS
	name  string
	epoch string

	mu        sync.Mutex
	tracks    []*hlsTrack
	ended     bool
	notify    chan struct{} // closed and replaced on every change
	maxSegDur float64       // longest segment so far, seconds, all tracks
	index     []byte        // cached multivariant playlist
	expect    int           // tracks the stream has; a missing one may still start

	// plain renders media playlists without the LL-HLS tags, and names,
	// when set, names init segments and segments (HLSWindow, for an origin).
	plain bool
	names Names
}

// hlsTrack is one track's media playlist state.
type hlsTrack struct {
	name     string
	kind     media.Kind
	init     *transmux.Init
	segs     []*transmux.Segment // complete, oldest first, at most Window
	parts    []*transmux.Part    // parts of the segment in progress
	cur      uint64              // MSN of the segment in progress
	discSeq  int                 // discontinuities that left the window
	oldInits []*transmux.Init    // earlier inits still used by the window
	cache    []byte              // rendered media playlist, nil when stale
}

func newHLSStream(h *HLS, name, epoch string) *hlsStream {
	return &hlsStream{h: h, name: name, epoch: epoch, notify: make(chan struct{})}
}

// changed wakes blocked requests and drops cached playlists. Called with
// s.mu held.
func (s *hlsStream) changed(t *hlsTrack) {
	close(s.notify)
	s.notify = make(chan struct{})
	s.index = nil
	if t != nil {
		t.cache = nil
	} else {
		for _, t := range s.tracks {
			t.cache = nil
		}
	}
}

func (s *hlsStream) track(name string) *hlsTrack {
	for _, t := range s.tracks {
		if t.name == name {
			return t
		}
	}
	return nil
}

func (s *hlsStream) trackOf(in *transmux.Init) *hlsTrack {
	for _, t := range s.tracks {
		if t.init != nil && t.init.Track == in.Track {
			return t
		}
	}
	return nil
}

// OnInit implements transmux.Sink.
func (s *hlsStream) OnInit(in *transmux.Init) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.trackOf(in)
	if t == nil {
		t = &hlsTrack{name: s.trackName(in.Track.Kind), kind: in.Track.Kind}
		s.tracks = append(s.tracks, t)
	} else {
		t.oldInits = append(t.oldInits, t.init)
	}
	t.init = in
	s.changed(t)
}

// trackName: "video", "audio", then "video2", "audio2"... in arrival order.
func (s *hlsStream) trackName(k media.Kind) string {
	n := 0
	for _, t := range s.tracks {
		if t.kind == k {
			n++
		}
	}
	if n == 0 {
		return k.String()
	}
	return k.String() + strconv.Itoa(n+1)
}

// OnPart implements transmux.Sink.
func (s *hlsStream) OnPart(p *transmux.Part) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.trackOf(p.Init)
	if t == nil {
		return
	}
	if p.MSN != t.cur || len(t.parts) > 0 && t.parts[0].MSN != p.MSN {
		t.parts = t.parts[:0]
		t.cur = p.MSN
	}
	t.parts = append(t.parts, p)
	s.changed(t)
}

// OnSegment implements transmux.Sink.
func (s *hlsStream) OnSegment(seg *transmux.Segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.trackOf(seg.Init)
	if t == nil {
		return
	}
	t.segs = append(t.segs, seg)
	if n := len(t.segs) - s.h.set.Window; n > 0 {
		for _, old := range t.segs[:n] {
			if old.Discontinuity {
				t.discSeq++
			}
		}
		clear(t.segs[:n])
		t.segs = append(t.segs[:0], t.segs[n:]...)
		t.pruneInits()
	}
	t.parts = nil // the segment owns them now; a new slice for the next one
	t.cur = seg.MSN + 1
	s.maxSegDur = max(s.maxSegDur, seg.Seconds())
	s.changed(t)
}

func (t *hlsTrack) pruneInits() {
	if len(t.oldInits) == 0 || len(t.segs) == 0 {
		return
	}
	first := t.segs[0].Init.Version
	keep := t.oldInits[:0]
	for _, in := range t.oldInits {
		if in.Version >= first {
			keep = append(keep, in)
		}
	}
	clear(t.oldInits[len(keep):])
	t.oldInits = keep
}

// OnEnd implements transmux.Sink. A run stopped for want of players
// (transmux.ErrIdle) drops the state at once: no player is left to see an
// EXT-X-ENDLIST, and the stream itself goes on.
func (s *hlsStream) OnEnd(err error) {
	if errors.Is(err, transmux.ErrIdle) {
		s.h.drop(s)
		return
	}
	s.mu.Lock()
	s.ended = true
	s.changed(nil)
	s.mu.Unlock()
	s.h.scheduleRemoval(s, s.h.set.EndGrace)
}

func (s *hlsStream) streamName() string { return s.name }

func (s *hlsStream) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// wait blocks until ready (called with s.mu held) returns true, the timeout
// passes, the request goes away or the packager closes. It returns with s.mu
// held and whether ready returned true.
func (s *hlsStream) wait(ctx context.Context, ready func() bool) bool {
	return waitLocked(ctx, &s.mu, func() <-chan struct{} { return s.notify }, s.h.ctx.Done(), s.h.set.BlockTimeout, ready)
}

// waitStart is wait for a playlist that has no segment yet, bounded by
// StartTimeout: a stream whose packaging the request just started.
func (s *hlsStream) waitStart(ctx context.Context, ready func() bool) bool {
	return waitLocked(ctx, &s.mu, func() <-chan struct{} { return s.notify }, s.h.ctx.Done(), s.h.set.StartTimeout, ready)
}

// lastMSN is the MSN of the last complete segment, or -1.
func (t *hlsTrack) lastMSN() int64 {
	if len(t.segs) == 0 {
		return -1
	}
	return int64(t.segs[len(t.segs)-1].MSN)
}

// has reports whether the playlist contains part p of segment msn or later
// (RFC 8216bis 6.2.5.2); p < 0 asks for the whole segment.
func (t *hlsTrack) has(msn int64, p int) bool {
	last := t.lastMSN()
	if last >= msn {
		return true
	}
	if p < 0 || len(t.parts) == 0 {
		return false
	}
	cur := int64(t.cur)
	return cur > msn || cur == msn && len(t.parts) > p
}

// ready is true once a playlist can be served: the track has a segment.
// (A playlist of parts alone is legal LL-HLS, but players and parsers such as
// gohlslib's and ffmpeg's refuse a media playlist without a complete segment.)
func (s *hlsStream) ready(t *hlsTrack) bool {
	return s.ended || t != nil && len(t.segs) > 0
}

func (s *hlsStream) serve(w http.ResponseWriter, r *http.Request, req *hlsRequest) {
	switch req.file {
	case fileMultivariant:
		s.serveMultivariant(w, r)
	case fileMedia:
		s.serveMedia(w, r, req)
	default:
		s.serveFile(w, r, req)
	}
}

func (s *hlsStream) serveMultivariant(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.waitStart(r.Context(), func() bool {
		return len(s.tracks) > 0 && s.ready(s.tracks[0])
	})
	if !ok || len(s.tracks) == 0 {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if s.index == nil {
		s.index = s.renderMultivariant(nil)
	}
	b := s.index
	s.mu.Unlock()
	if b == nil {
		http.NotFound(w, r)
		return
	}
	writePlaylist(w, r, b)
}

func (s *hlsStream) serveMedia(w http.ResponseWriter, r *http.Request, req *hlsRequest) {
	s.mu.Lock()
	t := s.track(req.track)
	if t == nil && len(s.tracks) < s.expect {
		// A track that has not started yet: wait for it like for a segment.
		s.waitStart(r.Context(), func() bool { t = s.track(req.track); return t != nil || s.ended })
	}
	if t == nil {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if req.blockMSN >= 0 {
		// RFC 8216bis 6.2.5.2: a request more than two segments ahead of the
		// last one in the playlist is refused at once.
		if !s.ended && req.blockMSN > int64(t.cur)+2 {
			s.mu.Unlock()
			http.Error(w, "_HLS_msn too far ahead", http.StatusBadRequest)
			return
		}
		if !s.wait(r.Context(), func() bool { return s.ended || t.has(req.blockMSN, req.blockPart) }) {
			s.mu.Unlock()
			http.Error(w, "not available in time", http.StatusServiceUnavailable)
			return
		}
	} else if !s.waitStart(r.Context(), func() bool { return s.ready(t) }) {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if t.cache == nil {
		t.cache = s.renderMedia(nil, t)
	}
	b := t.cache
	s.mu.Unlock()
	writePlaylist(w, r, b)
}

func writePlaylist(w http.ResponseWriter, r *http.Request, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// serveFile serves an init segment, a segment or a part. A part that is
// next to come (the preload hint) is waited for.
func (s *hlsStream) serveFile(w http.ResponseWriter, r *http.Request, req *hlsRequest) {
	if req.epoch != s.epoch {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	t := s.track(req.track)
	if t == nil {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	var (
		init *transmux.Init
		seg  *transmux.Segment
		part *transmux.Part
	)
	switch req.file {
	case fileInit:
		init = t.findInit(int(req.num))
	case fileSegment:
		seg = t.findSegment(req.num)
		if seg != nil && seg.Gap() {
			seg = nil
		}
	case filePart:
		part = t.findPart(req.num, req.part)
		// A part not there yet but next in line: hold the request until it
		// exists (the preload hint), the segment closes without it, or time out.
		if part == nil && !s.ended && t.soon(req.num, req.part) {
			s.wait(r.Context(), func() bool {
				part = t.findPart(req.num, req.part)
				return part != nil || s.ended || t.lastMSN() >= int64(req.num)
			})
		}
	}
	s.mu.Unlock()

	h := w.Header()
	ct := "video/mp4"
	if t.kind == media.KindAudio {
		ct = "audio/mp4"
	}
	switch {
	case init != nil:
		serveBytes(w, r, ct, int64(len(init.Data)), func() { _, _ = w.Write(init.Data) })
	case seg != nil:
		serveBytes(w, r, ct, seg.Size, func() { _, _ = seg.WriteTo(w) })
	case part != nil:
		serveBytes(w, r, ct, part.Size, func() { _, _ = part.WriteTo(w) })
	default:
		h.Del("Content-Type")
		http.NotFound(w, r)
	}
}

// serveBytes writes immutable media: the bytes behind a name never change
// (names carry the publish epoch), so they may be cached for long.
func serveBytes(w http.ResponseWriter, r *http.Request, ct string, size int64, write func()) {
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	if r.Method == http.MethodHead {
		return
	}
	write()
}

func (t *hlsTrack) findInit(v int) *transmux.Init {
	if t.init != nil && t.init.Version == v {
		return t.init
	}
	for _, in := range t.oldInits {
		if in.Version == v {
			return in
		}
	}
	return nil
}

func (t *hlsTrack) findSegment(msn uint64) *transmux.Segment {
	if len(t.segs) == 0 || msn < t.segs[0].MSN {
		return nil
	}
	// MSNs are consecutive within the window: try the direct index first.
	if i := msn - t.segs[0].MSN; i < uint64(len(t.segs)) && t.segs[i].MSN == msn {
		return t.segs[i]
	}
	for _, seg := range t.segs {
		if seg.MSN == msn {
			return seg
		}
	}
	return nil
}

func (t *hlsTrack) findPart(msn uint64, i int) *transmux.Part {
	if msn == t.cur && len(t.parts) > 0 && t.parts[0].MSN == msn {
		if i < len(t.parts) {
			return t.parts[i]
		}
		return nil
	}
	if seg := t.findSegment(msn); seg != nil && i < len(seg.Parts) {
		return seg.Parts[i]
	}
	return nil
}

// partAdvance is how far ahead of the newest part a part request may be and
// still be held rather than refused (RFC 8216bis 6.2.5.2 Advance Part Limit).
const partAdvance = 3

// soon reports whether part i of segment msn is at most partAdvance parts
// ahead of the newest part.
func (t *hlsTrack) soon(msn uint64, i int) bool {
	switch msn {
	case t.cur:
		return i < len(t.parts)+partAdvance
	case t.cur + 1:
		return i < partAdvance
	}
	return false
}
