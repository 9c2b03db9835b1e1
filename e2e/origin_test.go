package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/storage"
)

// TestE2EOriginS3 publishes 30 s over WHIP with origin: true to a real S3
// server and reads the live HLS straight from the bucket: while live the
// playlist names only objects that exist, its segments decode (h264 and the default audio codec),
// segments past the window are deleted; at the end EXT-X-ENDLIST is there
// and ffprobe plays the whole HLS from a local mirror of the prefix.
func TestE2EOriginS3(t *testing.T) {
	v := startVersitygw(t)
	spool := t.TempDir()
	cfg := fmt.Sprintf(`storage:
  type: s3
  spool_dir: %s
  shutdown_timeout: 5s
  s3: { bucket: %s, prefix: cdn, endpoint: "http://%s", region: us-east-1, path_style: true, access_key: %s, secret_key: %s }
origin: { prefix: live, window: 3 }
streams:
  - match: "*"
    origin: true
`, spool, s3Bucket, v.addr, s3Key, s3Secret)
	g := startGateway(t, cfg)
	pub := publish(t, g, "show/main", whipclient.Options{Loop: 3})
	st := v.store(t)
	ctx := context.Background()
	const base = "cdn/live/show/main/"

	// Live: every name in the playlist is an object, and segments decode.
	var live string
	waitFor(t, 15*time.Second, "a live media playlist with 3 segments in the bucket", func() bool {
		b, err := st.Get(ctx, base+"video.m3u8")
		live = string(b)
		return err == nil && strings.Count(live, "#EXTINF") == 3
	})
	keys, _ := st.List(ctx, base)
	have := map[string]bool{}
	for _, k := range keys {
		have[strings.TrimPrefix(k, base)] = true
	}
	for _, name := range playlistNames(live) {
		if !have[name] {
			t.Errorf("live playlist names %s, not in the bucket %v", name, keys)
		}
	}
	for _, tr := range []struct{ pl, codec string }{{"video.m3u8", "h264"}, {"audio.m3u8", defaultAudio()}} {
		b, _ := st.Get(ctx, base+tr.pl)
		names := playlistNames(string(b))
		if len(names) < 2 {
			t.Fatalf("%s: %q", tr.pl, b)
		}
		f := filepath.Join(t.TempDir(), "seg.mp4")
		var data []byte
		for _, n := range names[:2] { // the init, then the first segment
			obj, err := st.Get(ctx, base+n)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, obj...)
		}
		_ = os.WriteFile(f, data, 0o644)
		p := runProbe(t, f, false)
		kind := map[string]string{"h264": "video", defaultAudio(): "audio"}[tr.codec]
		if c, _, _, ok := p.stream(kind); !ok || c != tr.codec {
			t.Errorf("%s segment: codec %q, want %s", tr.pl, c, tr.codec)
		}
	}

	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	var final string
	waitFor(t, 20*time.Second, "the ended playlist", func() bool {
		b, err := st.Get(ctx, base+"video.m3u8")
		final = string(b)
		return err == nil && strings.HasSuffix(final, "#EXT-X-ENDLIST\n")
	})
	waitFor(t, 10*time.Second, "an empty spool", func() bool { return g.Spool().Pending() == 0 })
	keys, _ = st.List(ctx, base)
	segs := 0
	for _, k := range keys {
		if strings.HasPrefix(k, base+"video_") && strings.HasSuffix(k, ".m4s") {
			segs++
		}
	}
	if segs > 2*3+1 || strings.Contains(strings.Join(keys, " "), "_t0.m4s") {
		t.Errorf("old segments not deleted past the window: %d video segments, keys %v", segs, keys)
	}
	mpd, _ := st.Get(ctx, base+"manifest.mpd")
	if !strings.Contains(string(mpd), `type="static"`) {
		t.Errorf("MPD not static at the end:\n%s", mpd)
	}

	dir := mirror(t, st, base, keys)
	p := runProbe(t, filepath.Join(dir, "index.m3u8"), false)
	vc, _, _, vok := p.stream("video")
	ac, _, _, aok := p.stream("audio")
	if !vok || !aok || vc != "h264" || ac != defaultAudio() {
		t.Errorf("mirrored HLS: codecs video %q audio %q", vc, ac)
	}
	want := 0.0
	for _, l := range strings.Split(final, "\n") {
		if d, ok := strings.CutPrefix(l, "#EXTINF:"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSuffix(d, ","), 64)
			want += f
		}
	}
	if d := p.duration(); math.Abs(d-want) > 1 {
		t.Errorf("mirrored HLS lasts %.3f s, its playlist says %.3f s", d, want)
	}
	t.Logf("bucket: %d objects, final window %.3f s, ffprobe %.3f s", len(keys), want, p.duration())
}

// playlistNames lists what a media playlist names: map URIs and segments.
func playlistNames(pl string) []string {
	var out []string
	for _, l := range strings.Split(pl, "\n") {
		if u, ok := strings.CutPrefix(l, `#EXT-X-MAP:URI="`); ok {
			out = append(out, strings.TrimSuffix(u, `"`))
		} else if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func mirror(t *testing.T, st storage.Store, base string, keys []string) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range keys {
		b, err := st.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, strings.TrimPrefix(k, base)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
