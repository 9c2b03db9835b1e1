package packager

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/whipcast/whipcast/media"
)

// hlsFile is the kind of file a request names.
type hlsFile int

const (
	fileMultivariant hlsFile = iota + 1 // index.m3u8
	fileMedia                           // {track}.m3u8
	fileInit                            // {track}_{epoch}_init{V}.mp4
	fileSegment                         // {track}_{epoch}_seg{N}.m4s
	filePart                            // {track}_{epoch}_part{N}_{I}.m4s
)

// hlsRequest is a parsed request path and query.
type hlsRequest struct {
	stream string
	file   hlsFile
	track  string
	epoch  string
	num    uint64 // init version, or segment MSN
	part   int    // part index
	// Blocking playlist reload (RFC 8216bis 6.2.5.2): msn < 0 means none,
	// part < 0 means none.
	blockMSN  int64
	blockPart int
}

// maxNum bounds numbers in paths and queries so later arithmetic cannot
// overflow.
const maxNum = 1 << 53

// parseHLSRequest parses "{stream}/{file}" (no leading slash: the web layer
// strips its prefix) and the raw query. The stream name may contain "/", so
// the file name is the part after the last one.
func parseHLSRequest(path, rawQuery string) (hlsRequest, error) {
	req := hlsRequest{blockMSN: -1, blockPart: -1}
	path = strings.TrimPrefix(path, "/")
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return req, fmt.Errorf("%w: no stream in path", ErrNotFound)
	}
	req.stream, path = path[:i], path[i+1:]
	if err := media.ValidateName(req.stream); err != nil {
		return req, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err := req.parseFile(path); err != nil {
		return req, err
	}
	if rawQuery == "" {
		return req, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return req, fmt.Errorf("%w: query: %w", ErrBadRequest, err)
	}
	if v, ok := q["_HLS_msn"]; ok {
		n, err := parseNum(v[0])
		if err != nil {
			return req, fmt.Errorf("%w: _HLS_msn: %w", ErrBadRequest, err)
		}
		req.blockMSN = int64(n)
	}
	if v, ok := q["_HLS_part"]; ok {
		n, err := parseNum(v[0])
		if err != nil || n > 1<<20 {
			return req, fmt.Errorf("%w: _HLS_part %q", ErrBadRequest, v[0])
		}
		// RFC 8216bis 6.2.5.2: _HLS_part without _HLS_msn is a bad request.
		if req.blockMSN < 0 {
			return req, fmt.Errorf("%w: _HLS_part without _HLS_msn", ErrBadRequest)
		}
		req.blockPart = int(n)
	}
	if req.blockMSN >= 0 && req.file != fileMedia {
		return req, fmt.Errorf("%w: _HLS_msn on a non-media-playlist", ErrBadRequest)
	}
	return req, nil
}

func (r *hlsRequest) parseFile(name string) error {
	if name == "index.m3u8" {
		r.file = fileMultivariant
		return nil
	}
	if t, ok := strings.CutSuffix(name, ".m3u8"); ok {
		if !validTrackName(t) {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		r.file, r.track = fileMedia, t
		return nil
	}
	var base string
	var ok bool
	if base, ok = strings.CutSuffix(name, ".mp4"); ok {
		r.file = fileInit
	} else if base, ok = strings.CutSuffix(name, ".m4s"); !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	parts := strings.Split(base, "_")
	if len(parts) != 3 && len(parts) != 4 || !validTrackName(parts[0]) || !validEpoch(parts[1]) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	r.track, r.epoch = parts[0], parts[1]
	var num string
	switch {
	case r.file == fileInit && len(parts) == 3 && strings.HasPrefix(parts[2], "init"):
		num = parts[2][len("init"):]
	case r.file == 0 && len(parts) == 3 && strings.HasPrefix(parts[2], "seg"):
		r.file, num = fileSegment, parts[2][len("seg"):]
	case r.file == 0 && len(parts) == 4 && strings.HasPrefix(parts[2], "part"):
		r.file, num = filePart, parts[2][len("part"):]
		p, err := parseNum(parts[3])
		if err != nil || p > 1<<20 {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		r.part = int(p)
	default:
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	n, err := parseNum(num)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	r.num = n
	return nil
}

// parseNum accepts canonical decimal numbers only (no sign, no leading
// zero), so one file has one name.
func parseNum(s string) (uint64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' || len(s) > 16 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad number %q", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n >= maxNum {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return n, nil
}

// validTrackName: a lowercase word with an optional decimal suffix, as
// trackName makes them ("video", "audio", "audio2").
func validTrackName(s string) bool {
	if s == "" || len(s) > 16 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validEpoch(s string) bool { return validTrackName("e"+s) && s != "" }

// URL builders: the only place file names are made.

func initName(track, epoch string, version int) string {
	return track + "_" + epoch + "_init" + strconv.Itoa(version) + ".mp4"
}

func appendSegName(b []byte, track, epoch string, msn uint64) []byte {
	b = append(b, track...)
	b = append(b, '_')
	b = append(b, epoch...)
	b = append(b, "_seg"...)
	b = strconv.AppendUint(b, msn, 10)
	return append(b, ".m4s"...)
}

func appendPartName(b []byte, track, epoch string, msn uint64, i int) []byte {
	b = append(b, track...)
	b = append(b, '_')
	b = append(b, epoch...)
	b = append(b, "_part"...)
	b = strconv.AppendUint(b, msn, 10)
	b = append(b, '_')
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, ".m4s"...)
}
