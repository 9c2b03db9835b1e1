package packager

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/whipcast/whipcast/media"
)

// dashFile is the kind of file a DASH request names.
type dashFile int

const (
	dashManifest dashFile = iota + 1 // manifest.mpd
	dashInit                         // {track}_{epoch}_init{V}.mp4
	dashSegment                      // {track}_{epoch}_p{P}_t{T}.m4s
)

// dashManifestName is the MPD's file name under the stream.
const dashManifestName = "manifest.mpd"

// dashRequest is a parsed DASH request path.
type dashRequest struct {
	stream string
	file   dashFile
	track  string
	epoch  string
	// num is the init version, or the segment's start time ($Time$, ISO/IEC
	// 23009-1 5.3.9.4.4) in the track timescale: addressing by time rather
	// than $Number$ keeps every URL right when a track has a gap segment,
	// which the SegmentTimeline leaves out.
	num uint64
	// period is the first MSN of the segment's Period (segments only): a
	// segment URL names its Period, so that one start time in two Periods
	// (the segment in production when an init change or a reconnect opened
	// a new Period) is two URLs, and a player that asked for it under the
	// old Period's init never gets the new Period's bytes.
	period uint64
}

// parseDASHRequest parses "{stream}/{file}" (no leading slash: the web layer
// strips its prefix). Like HLS, the stream name may contain "/", so the file
// is what follows the last one. Every error wraps ErrNotFound: a DASH path
// has no query to get wrong.
func parseDASHRequest(path string) (dashRequest, error) {
	var req dashRequest
	path = strings.TrimPrefix(path, "/")
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return req, fmt.Errorf("%w: no stream in path", ErrNotFound)
	}
	req.stream, path = path[:i], path[i+1:]
	if err := media.ValidateName(req.stream); err != nil {
		return req, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if path == dashManifestName {
		req.file = dashManifest
		return req, nil
	}
	var base, num string
	var ok bool
	if base, ok = strings.CutSuffix(path, ".mp4"); ok {
		req.file = dashInit
	} else if base, ok = strings.CutSuffix(path, ".m4s"); ok {
		req.file = dashSegment
	} else {
		return req, fmt.Errorf("%w: %q", ErrNotFound, path)
	}
	parts := strings.Split(base, "_")
	want := 3
	if req.file == dashSegment {
		want = 4
	}
	if len(parts) != want || !validTrackName(parts[0]) || !validEpoch(parts[1]) {
		return req, fmt.Errorf("%w: %q", ErrNotFound, path)
	}
	req.track, req.epoch = parts[0], parts[1]
	switch {
	case req.file == dashInit && strings.HasPrefix(parts[2], "init"):
		num = parts[2][len("init"):]
	case req.file == dashSegment && strings.HasPrefix(parts[2], "p") && strings.HasPrefix(parts[3], "t"):
		per, err := parseNum(parts[2][len("p"):])
		if err != nil {
			return req, fmt.Errorf("%w: %q", ErrNotFound, path)
		}
		req.period = per
		num = parts[3][len("t"):]
	default:
		return req, fmt.Errorf("%w: %q", ErrNotFound, path)
	}
	n, err := parseNum(num)
	if err != nil {
		return req, fmt.Errorf("%w: %q", ErrNotFound, path)
	}
	req.num = n
	return req, nil
}

// URL builders: the only place DASH file names are made.

func dashInitName(track, epoch string, version int) string {
	return track + "_" + epoch + "_init" + strconv.Itoa(version) + ".mp4"
}

// dashMediaTemplate is SegmentTemplate@media (ISO/IEC 23009-1 5.3.9.4.4)
// of the Period whose first segment is period.
func dashMediaTemplate(track, epoch string, period uint64) string {
	return track + "_" + epoch + "_p" + strconv.FormatUint(period, 10) + "_t$Time$.m4s"
}

func dashSegmentName(track, epoch string, period, t uint64) string {
	return track + "_" + epoch + "_p" + strconv.FormatUint(period, 10) + "_t" + strconv.FormatUint(t, 10) + ".m4s"
}
