package recorder

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
)

// The work directory of an open session (spool_dir/sessions/<id>/) holds what
// finalising needs, independent of the uploads: session.json, each track's
// init segments and fragments (<track>.cmaf, appended and fsync'd segment by
// segment) and index.jsonl, one line per init or segment, written after the
// bytes it points at. A crash leaves a consistent prefix; a torn last line is
// ignored.

// sessionInfo is session.json.
type sessionInfo struct {
	// Base is the key prefix of every object of the session, with a
	// trailing "/".
	Base   string   `json:"base"`
	Stream string   `json:"stream"`
	Start  string   `json:"start"`
	Tracks []string `json:"tracks"`
	Kinds  []string `json:"kinds"`
}

// entry is one line of index.jsonl.
type entry struct {
	// Init lines.
	Init       bool   `json:"init,omitempty"`
	Codec      string `json:"codec,omitempty"`
	Timescale  uint32 `json:"timescale,omitempty"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
	// Both.
	Track   string `json:"track"`
	Version int    `json:"v"`
	Key     string `json:"key"`
	File    string `json:"file"`
	// Segment lines.
	MSN    uint64 `json:"msn,omitempty"`
	BMDT   uint64 `json:"bmdt,omitempty"`
	Dur    uint64 `json:"dur,omitempty"`
	Disc   bool   `json:"disc,omitempty"`
	Offset int64  `json:"off,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// trackIndex is one track's inits and segments, in order.
type trackIndex struct {
	name  string
	kind  string
	inits []entry // by version order of appearance
	segs  []entry
}

func (t *trackIndex) init(version int) *entry {
	for i := range t.inits {
		if t.inits[i].Version == version {
			return &t.inits[i]
		}
	}
	return nil
}

// readIndex loads a work directory.
func readIndex(dir string) (*sessionInfo, []*trackIndex, error) {
	b, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if err != nil {
		return nil, nil, err
	}
	var info sessionInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, nil, err
	}
	tracks := make([]*trackIndex, len(info.Tracks))
	byName := map[string]*trackIndex{}
	for i, n := range info.Tracks {
		tracks[i] = &trackIndex{name: n, kind: info.Kinds[i]}
		byName[n] = tracks[i]
	}
	f, err := os.Open(filepath.Join(dir, "index.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return &info, tracks, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e entry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			break // torn last line of a crash
		}
		t := byName[e.Track]
		if t == nil {
			continue
		}
		if e.Init {
			t.inits = append(t.inits, e)
		} else {
			t.segs = append(t.segs, e)
		}
	}
	for _, t := range tracks {
		sort.SliceStable(t.segs, func(i, j int) bool { return t.segs[i].MSN < t.segs[j].MSN })
	}
	return &info, tracks, nil
}
