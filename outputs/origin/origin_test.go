package origin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/storage"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// checkStore is a slow Local that checks what a CDN in front of it would
// see: at every playlist or MPD upload, everything it names is already
// there; at every delete, no stored playlist names the object.
type checkStore struct {
	*storage.Local
	slow time.Duration

	mu   sync.Mutex
	bad  []string
	meta map[string]storage.Meta
	dels []string
}

func (c *checkStore) Put(ctx context.Context, key string, r io.Reader, size int64, m storage.Meta) error {
	time.Sleep(c.slow)
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	dir := key[:strings.LastIndexByte(key, '/')+1]
	for _, name := range named(key, b) {
		if _, err := c.Local.Get(ctx, dir+name); err != nil {
			c.fail(fmt.Sprintf("%s uploaded before %s", key, name))
		}
	}
	c.mu.Lock()
	c.meta[key] = m
	c.mu.Unlock()
	return c.Local.Put(ctx, key, bytes.NewReader(b), size, m)
}

func (c *checkStore) Delete(ctx context.Context, key string) error {
	dir := key[:strings.LastIndexByte(key, '/')+1]
	keys, _ := c.Local.List(ctx, dir)
	for _, k := range keys {
		if strings.HasSuffix(k, ".m3u8") || strings.HasSuffix(k, ".mpd") {
			b, _ := c.Local.Get(ctx, k)
			for _, name := range named(k, b) {
				if dir+name == key {
					c.fail(fmt.Sprintf("%s deleted while %s names it", key, k))
				}
			}
		}
	}
	c.mu.Lock()
	c.dels = append(c.dels, key)
	c.mu.Unlock()
	return c.Local.Delete(ctx, key)
}

func (c *checkStore) fail(s string) {
	c.mu.Lock()
	c.bad = append(c.bad, s)
	c.mu.Unlock()
}

var (
	reURI      = regexp.MustCompile(`URI="([^"]+)"`)
	reSet      = regexp.MustCompile(`(?s)<AdaptationSet.*?</AdaptationSet>`)
	reInit     = regexp.MustCompile(`initialization="([^"]+)"`)
	reMedia    = regexp.MustCompile(`media="([^"]+)"`)
	reTimeline = regexp.MustCompile(`<S (?:t="(\d+)" )?d="(\d+)"(?: r="(\d+)")?`)
)

// named lists the files a playlist or MPD names (a GAP segment has none).
func named(key string, b []byte) []string {
	var out []string
	switch {
	case strings.HasSuffix(key, ".m3u8"):
		gap := false
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case l == "#EXT-X-GAP":
				gap = true
			case strings.HasPrefix(l, "#"):
				for _, m := range reURI.FindAllStringSubmatch(l, -1) {
					out = append(out, m[1])
				}
			case l != "":
				if !gap {
					out = append(out, l)
				}
				gap = false
			}
		}
	case strings.HasSuffix(key, ".mpd"):
		for _, set := range reSet.FindAllString(string(b), -1) {
			out = append(out, reInit.FindStringSubmatch(set)[1])
			tmpl := reMedia.FindStringSubmatch(set)[1]
			var t uint64
			for _, s := range reTimeline.FindAllStringSubmatch(set, -1) {
				if s[1] != "" {
					t, _ = strconv.ParseUint(s[1], 10, 64)
				}
				d, _ := strconv.ParseUint(s[2], 10, 64)
				r, _ := strconv.Atoi(s[3])
				for range r + 1 {
					out = append(out, strings.Replace(tmpl, "$Time$", strconv.FormatUint(t, 10), 1))
					t += d
				}
			}
		}
	}
	return out
}

func publish(t *testing.T, set Settings, slow time.Duration) *checkStore {
	t.Helper()
	fx, err := transmuxtest.Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Unix(1_700_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := storage.NewLocal(t.TempDir())
	st := &checkStore{Local: loc, slow: slow, meta: map[string]storage.Meta{}}
	sp, err := storage.NewSpool(st, storage.SpoolSettings{Dir: t.TempDir(), Meta: Meta})
	if err != nil {
		t.Fatal(err)
	}
	set.Spool, set.Prefix = sp, "live"
	set.Publish = func(string) bool { return true }
	o, err := New(set)
	if err != nil {
		t.Fatal(err)
	}
	sink := o.consume(media.NewStream("cam/1", fx.Tracks(), nil))
	tm, err := transmux.New(transmux.Settings{}, fx.Tracks(), sink)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx.Frames {
		if err := tm.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	tm.End(nil)
	o.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sp.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, b := range st.bad {
		t.Error(b)
	}
	return st
}

// TestOriginOrder publishes the fixture through a slow store: no playlist
// or MPD ever names a missing object, segments that left the window are
// deleted only after the playlists dropped them, the end is marked.
func TestOriginOrder(t *testing.T) {
	st := publish(t, Settings{Window: 1}, 3*time.Millisecond)
	ctx := context.Background()
	keys, _ := st.List(ctx, "live/cam/1/")
	var video int
	for _, k := range keys {
		if strings.HasPrefix(k, "live/cam/1/video_") && strings.HasSuffix(k, ".m4s") {
			video++
		}
	}
	if video != 3 || len(st.dels) == 0 {
		t.Errorf("%d video segments kept (want 2×window+1 = 3), %d deleted; keys %v", video, len(st.dels), keys)
	}
	pl, _ := st.Get(ctx, "live/cam/1/video.m3u8")
	if !bytes.HasSuffix(pl, []byte("#EXT-X-ENDLIST\n")) || bytes.Contains(pl, []byte("EXT-X-PART")) {
		t.Errorf("final media playlist:\n%s", pl)
	}
	mpd, _ := st.Get(ctx, "live/cam/1/manifest.mpd")
	if !bytes.Contains(mpd, []byte(`type="static"`)) || !bytes.Contains(mpd, []byte("urn:mpeg:dash:utc:direct:2014")) {
		t.Errorf("final MPD:\n%s", mpd)
	}
	index, _ := st.Get(ctx, "live/cam/1/index.m3u8")
	if !bytes.Contains(index, []byte("video.m3u8")) || !bytes.Contains(index, []byte(`URI="audio.m3u8"`)) {
		t.Errorf("multivariant playlist:\n%s", index)
	}
	for k, m := range st.meta {
		want := Meta(k)
		if m != want || m.CacheControl == "" {
			t.Errorf("%s stored with %+v, want %+v", k, m, want)
		}
	}
	if m := st.meta["live/cam/1/audio.m3u8"]; m.ContentType != "application/vnd.apple.mpegurl" || m.CacheControl != CachePlaylist {
		t.Errorf("playlist meta %+v", m)
	}
}

// TestOriginKeep keeps every segment and lists them all.
func TestOriginKeep(t *testing.T) {
	st := publish(t, Settings{Window: 1, Keep: true}, 0)
	if len(st.dels) != 0 {
		t.Errorf("deleted %v with keep", st.dels)
	}
	pl, _ := st.Get(context.Background(), "live/cam/1/video.m3u8")
	segs := strings.Count(string(pl), "#EXTINF")
	keys, _ := st.List(context.Background(), "live/cam/1/video_")
	if segs < 4 || segs != len(keys)-1 { // the rest are segments, one init
		t.Errorf("playlist lists %d segments, storage holds %v:\n%s", segs, keys, pl)
	}
}
