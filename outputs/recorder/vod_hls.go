package recorder

import (
	"fmt"
	"math"
	"path"
	"strings"
)

// VOD HLS over the recorded CMAF segments (RFC 8216bis): a multivariant
// playlist and one media playlist per track, each with
// EXT-X-PLAYLIST-TYPE:VOD and EXT-X-ENDLIST (sections 4.4.3.5, 4.4.3.4).
// URIs are relative, so the recording plays from wherever it is copied.

// hlsNames are the playlist file names of a session.
const (
	hlsMultivariant = "index.m3u8"
)

func mediaPlaylistName(track string) string { return track + ".m3u8" }

// bandwidth is the peak segment bit rate of t in bits/s (EXT-X-STREAM-INF
// BANDWIDTH, RFC 8216bis 4.4.6.2).
func (t *trackIndex) bandwidth() int {
	peak := 0.0
	for _, s := range t.segs {
		ts := t.timescale(s.Version)
		if s.Dur == 0 || ts == 0 {
			continue
		}
		peak = max(peak, float64(s.Size*8)/(float64(s.Dur)/float64(ts)))
	}
	return int(math.Ceil(peak))
}

func (t *trackIndex) timescale(version int) uint32 {
	if in := t.init(version); in != nil {
		return in.Timescale
	}
	if len(t.inits) > 0 {
		return t.inits[0].Timescale
	}
	return 0
}

// renderMultivariant writes index.m3u8: video as the variant, audio as its
// rendition group; an audio-only or video-only recording is one variant.
func renderMultivariant(tracks []*trackIndex) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	var video, audio *trackIndex
	for _, t := range tracks {
		if len(t.segs) == 0 || len(t.inits) == 0 {
			continue
		}
		switch {
		case t.kind == "video" && video == nil:
			video = t
		case t.kind == "audio" && audio == nil:
			audio = t
		}
	}
	switch {
	case video != nil && audio != nil:
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"%s\"\n",
			mediaPlaylistName(audio.name))
		v := video.inits[0]
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s,%s\",RESOLUTION=%dx%d,AUDIO=\"audio\"\n%s\n",
			video.bandwidth()+audio.bandwidth(), v.Codec, audio.inits[0].Codec, v.Width, v.Height, mediaPlaylistName(video.name))
	case video != nil:
		v := video.inits[0]
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\",RESOLUTION=%dx%d\n%s\n",
			video.bandwidth(), v.Codec, v.Width, v.Height, mediaPlaylistName(video.name))
	case audio != nil:
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"\n%s\n",
			audio.bandwidth(), audio.inits[0].Codec, mediaPlaylistName(audio.name))
	}
	return b.String()
}

// renderMediaPlaylist writes one track's VOD playlist. An init change
// (a new version) is an EXT-X-DISCONTINUITY with a new EXT-X-MAP; any other
// discontinuity (a resumed publish, segments the recording dropped) is an
// EXT-X-DISCONTINUITY alone.
func renderMediaPlaylist(t *trackIndex) string {
	target := 1
	for _, s := range t.segs {
		if ts := t.timescale(s.Version); ts > 0 {
			target = max(target, int(math.Round(float64(s.Dur)/float64(ts))))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n", target)
	version := -1
	for _, s := range t.segs {
		if version >= 0 && (s.Version != version || s.Disc) {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if s.Version != version {
			version = s.Version
			if in := t.init(version); in != nil {
				fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", path.Base(in.Key))
			}
		}
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", float64(s.Dur)/float64(t.timescale(s.Version)), path.Base(s.Key))
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String()
}
