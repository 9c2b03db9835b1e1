package web

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/whipcast/whipcast/outputs/recorder"
	"github.com/whipcast/whipcast/storage"
)

// RecordingInfo is one recording in the store (GET /v1/recordings).
type RecordingInfo struct {
	// Key is the key prefix of its objects, ending in "/": GET
	// /v1/recordings/{key}{file} fetches one.
	Key     string    `json:"key"`
	Stream  string    `json:"stream"`
	Started time.Time `json:"started"`
	// Complete is set once the VOD playlists and the MP4 are stored (the
	// multivariant playlist is stored last).
	Complete bool     `json:"complete"`
	Files    []string `json:"files"`
	// MP4 and HLS are the API paths of the progressive MP4 and the VOD
	// HLS playlist, when complete.
	MP4 string `json:"mp4,omitempty"`
	HLS string `json:"hls,omitempty"`
}

// groupRecordings groups store keys "{prefix}/{stream}/{start}/{file}" by
// session, newest first.
func groupRecordings(keys []string, prefix string) []RecordingInfo {
	by := map[string]*RecordingInfo{}
	var order []string
	for _, k := range keys {
		dir, file := path.Split(k)
		rest := strings.TrimPrefix(strings.TrimSuffix(dir, "/"), prefix)
		rest = strings.TrimPrefix(rest, "/")
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			continue
		}
		stream, start := rest[:i], rest[i+1:]
		t, err := time.Parse(recorder.StartLayout, start)
		if err != nil {
			continue
		}
		ri := by[dir]
		if ri == nil {
			ri = &RecordingInfo{Key: dir, Stream: stream, Started: t, Files: []string{}}
			by[dir] = ri
			order = append(order, dir)
		}
		ri.Files = append(ri.Files, file)
		if file == "index.m3u8" {
			ri.Complete = true
		}
	}
	out := make([]RecordingInfo, 0, len(order))
	for _, d := range order {
		ri := by[d]
		if ri.Complete {
			ri.HLS = "/v1/recordings/" + ri.Key + "index.m3u8"
			for _, f := range ri.Files {
				if f == "recording.mp4" {
					ri.MP4 = "/v1/recordings/" + ri.Key + f
				}
			}
		}
		out = append(out, *ri)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func (a *API) listRecordings(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if a.opt.Store == nil {
		writeError(w, notImplemented("recordings"))
		return
	}
	prefix := a.opt.StorePrefix
	if prefix != "" {
		prefix = strings.Trim(prefix, "/") + "/"
	}
	if s := r.URL.Query().Get("stream"); s != "" {
		prefix += s + "/"
	}
	keys, err := a.opt.Store.List(r.Context(), prefix)
	if err != nil {
		a.log.Error("api: listing recordings", "err", err)
		writeError(w, &apiError{http.StatusBadGateway, "storage", err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": groupRecordings(keys, a.opt.StorePrefix)})
}

// getRecordingObject serves one stored object with Range support (players
// seek in the MP4). Stores that can (local disk, S3) stream it with ranged
// reads instead of holding an hour of recording in memory.
func (a *API) getRecordingObject(w http.ResponseWriter, r *http.Request, v map[string]string) {
	if a.opt.Store == nil {
		writeError(w, notImplemented("recordings"))
		return
	}
	key := v["key"]
	if err := storage.ValidKey(key); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_key", err.Error()})
		return
	}
	if p := strings.Trim(a.opt.StorePrefix, "/"); p != "" && !strings.HasPrefix(key, p+"/") {
		writeError(w, &apiError{http.StatusNotFound, "not_found", "no such recording object"})
		return
	}
	var body io.ReadSeeker
	var err error
	if op, ok := a.opt.Store.(storage.Opener); ok {
		var obj storage.Object
		if obj, err = op.Open(r.Context(), key); err == nil {
			defer obj.Close()
			body = obj
		}
	} else {
		var b []byte
		if b, err = a.opt.Store.Get(r.Context(), key); err == nil {
			body = bytes.NewReader(b)
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, &apiError{http.StatusNotFound, "not_found", "no such recording object"})
		return
	}
	if err != nil {
		a.log.Error("api: reading a recording", "key", key, "err", err)
		writeError(w, &apiError{http.StatusBadGateway, "storage", err.Error()})
		return
	}
	w.Header().Set("Content-Type", storage.TypeByKey(key))
	w.Header().Set("Cache-Control", "private, max-age=3600")
	http.ServeContent(w, r, "", time.Time{}, body)
}
