package packager

import (
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// The windows below are the packagers' per-publish state without the HTTP
// side: an output that publishes playlists elsewhere (outputs/origin, a CDN
// origin in a bucket) feeds one as a transmux.Sink and renders the very
// playlists and MPD the gateway serves, minus what only a live server can
// do: no LL-HLS parts, preload hints or blocking reload, and no DASH
// segment announced while in production.

// Names gives the URIs a rendered playlist uses for init segments and
// segments, relative to the playlist.
type Names interface {
	InitName(*transmux.Init) string
	SegmentName(*transmux.Segment) string
}

// HLSWindow is one publish's HLS state: a window of complete segments per
// track. It is a transmux.Sink (parts are not needed) and safe for
// concurrent use.
type HLSWindow struct {
	*hlsStream
}

// NewHLSWindow makes the HLS state of a publish of stream with the given
// tracks, keeping window segments per media playlist (0: DefaultHLSWindow).
// tm are the transmuxer's settings (the target duration); names names the
// files.
func NewHLSWindow(s *media.Stream, window int, tm transmux.Settings, names Names) *HLSWindow {
	h := NewHLS(HLSSettings{Window: window}, nil)
	h.set = h.user.withDefaults(tm)
	st := newHLSStream(h, s.Name, "")
	st.expect, st.plain, st.names = len(s.Tracks), true, names
	return &HLSWindow{st}
}

// OnPart implements transmux.Sink: a plain playlist lists whole segments.
func (w *HLSWindow) OnPart(*transmux.Part) {}

// PlaylistName is the file name of the media playlist of in's track.
func (w *HLSWindow) PlaylistName(in *transmux.Init) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t := w.trackOf(in); t != nil {
		return t.name + ".m3u8"
	}
	return ""
}

// Media renders the media playlist of in's track (RFC 8216bis 4.4.3; with
// EXT-X-ENDLIST once the stream ended), or nil before its first segment.
func (w *HLSWindow) Media(in *transmux.Init) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.trackOf(in)
	if t == nil || !w.ready(t) {
		return nil
	}
	return w.renderMedia(nil, t)
}

// Multivariant renders index.m3u8 once every track of the stream has a
// segment (or the stream ended), else nil: a player must not see a variant
// without its audio.
func (w *HLSWindow) Multivariant() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, t := range w.tracks {
		if len(t.segs) > 0 {
			n++
		}
	}
	if n == 0 || n < w.expect && !w.ended {
		return nil
	}
	return w.renderMultivariant(nil)
}

// DASHWindow is one publish's live DASH state (ISO/IEC 23009-1 dynamic MPD,
// static once ended), with low latency off. It is a transmux.Sink (it needs
// the parts: they open Periods) and names the files, so it is the Names of
// an HLSWindow that shares them.
type DASHWindow struct {
	*dashSink
}

// NewDASHWindow makes the DASH state of a publish of s, file names made
// unique by epoch (lowercase letters and digits), keeping window segments
// per Representation (0: DefaultDASHWindow).
func NewDASHWindow(s *media.Stream, epoch string, window int, tm transmux.Settings) *DASHWindow {
	d := NewDASH(DASHSettings{Window: window, DisableLowLatency: true}, nil)
	d.set = d.user.withDefaults(tm)
	st := newDASHStream(d, s.Name, epoch, carried(s))
	st.direct = true
	return &DASHWindow{&dashSink{s: st, epoch: epoch}}
}

// windowTrackWait is how many segments of its lead track an MPD of a
// DASHWindow waits for a track that has not come yet (a failed audio
// transcode) before it is written without it.
const windowTrackWait = 3

// MPD renders the MPD, or nil before a Period has a complete segment of
// every track (see dashStream.serveMPD; a missing track is waited for
// windowTrackWait segments). Its UTCTiming gives the time of rendering
// directly (urn:mpeg:dash:utc:direct:2014).
func (w *DASHWindow) MPD() []byte {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasSegments() || !s.ended && !s.hasComplete() && s.leadSegments() < windowTrackWait {
		return nil
	}
	return s.renderMPD()
}

// ManifestName is the MPD's file name.
func (w *DASHWindow) ManifestName() string { return dashManifestName }

// InitName implements Names: "{track}_{epoch}_init{V}.mp4".
func (w *DASHWindow) InitName(in *transmux.Init) string {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return dashInitName(w.s.trackName(in.Track), w.epoch, in.Version)
}

// SegmentName implements Names: "{track}_{epoch}_p{period}_t{time}.m4s",
// as the MPD's SegmentTemplate makes it (period: the first MSN of the
// segment's Period).
func (w *DASHWindow) SegmentName(seg *transmux.Segment) string {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	var period uint64
	for _, per := range w.s.periods {
		if per.epoch == w.epoch && per.firstMSN <= seg.MSN {
			period = per.firstMSN
		}
	}
	return dashSegmentName(w.s.trackName(seg.Init.Track), w.epoch, period, seg.BaseMediaDecodeTime)
}
