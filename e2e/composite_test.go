package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/stages/composite"
)

// hlsSegment is one complete segment of a media playlist.
type hlsSegment struct {
	uri, init string
	start     time.Time // EXT-X-PROGRAM-DATE-TIME
	dur       float64
}

// segments parses a media playlist's complete segments (parts are skipped).
func segments(t *testing.T, playlist string) []hlsSegment {
	t.Helper()
	var out []hlsSegment
	var init string
	var pdt time.Time
	var dur float64
	sc := bufio.NewScanner(strings.NewReader(playlist))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:URI=\""):
			init, _, _ = strings.Cut(strings.TrimPrefix(l, "#EXT-X-MAP:URI=\""), "\"")
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			var err error
			if pdt, err = time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:")); err != nil {
				t.Fatalf("PDT %q: %v", l, err)
			}
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			fmt.Sscan(v, &dur)
		case l != "" && !strings.HasPrefix(l, "#"):
			out = append(out, hlsSegment{uri: l, init: init, start: pdt, dur: dur})
			pdt = pdt.Add(time.Duration(dur * float64(time.Second)))
		}
	}
	return out
}

// download writes init + the segments of playlist that overlap [from, to)
// to one file and returns its path and the PDT of its first segment.
func download(t *testing.T, base, playlist string, from, to time.Time) (string, time.Time) {
	t.Helper()
	_, body := get(t, base+playlist)
	dir := base + playlist[:strings.LastIndex(playlist, "/")+1]
	var b []byte
	var first time.Time
	for _, s := range segments(t, body) {
		end := s.start.Add(time.Duration(s.dur * float64(time.Second)))
		if !end.After(from) || !s.start.Before(to) {
			continue
		}
		if b == nil {
			first = s.start
			code, init := get(t, dir+s.init)
			if code != http.StatusOK {
				t.Fatalf("init %s: %d", s.init, code)
			}
			b = []byte(init)
		}
		code, seg := get(t, dir+s.uri)
		if code != http.StatusOK {
			t.Fatalf("segment %s: %d", s.uri, code)
		}
		b = append(b, seg...)
	}
	if b == nil {
		t.Fatalf("no segment of %s covers %s–%s:\n%s", playlist, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), body)
	}
	f := filepath.Join(t.TempDir(), "media.mp4")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, first
}

// decodeFrames decodes a video file with ffmpeg into w×h RGB pictures at 10
// per second.
func decodeFrames(t *testing.T, file string, w, h int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", file, "-vf", fmt.Sprintf("fps=10,scale=%d:%d", w, h),
		"-pix_fmt", "rgb24", "-f", "rawvideo", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg video decode: %v", err)
	}
	var frames [][]byte
	for n := w * h * 3; len(out) >= n; out = out[n:] {
		frames = append(frames, out[:n])
	}
	return frames
}

// decodeAudio decodes an audio file with ffmpeg into mono float samples at
// 8 kHz.
func decodeAudio(t *testing.T, file string) []float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", file, "-ac", "1", "-ar", "8000", "-f", "f32le", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg audio decode: %v", err)
	}
	s := make([]float64, len(out)/4)
	for i := range s {
		s[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:])))
	}
	return s
}

func tone(x []float64, f float64) float64 {
	w := 2 * math.Pi * f / 8000
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	return 2 * math.Hypot(s1-s2*math.Cos(w), s2*math.Sin(w)) / float64(len(x))
}

// maxPacketGap is the largest step between consecutive packet timestamps of
// the first stream in file, by ffprobe.
func maxPacketGap(t *testing.T, file string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	var gap, prev float64
	n := 0
	for _, l := range strings.Fields(string(out)) {
		var v float64
		if _, err := fmt.Sscan(strings.TrimSuffix(l, ","), &v); err != nil {
			continue
		}
		if n > 0 {
			gap = max(gap, v-prev)
		}
		prev = v
		n++
	}
	if n < 30 {
		t.Fatalf("ffprobe found %d packets in %s", n, file)
	}
	return gap
}

type rgb struct{ r, g, b int }

func pixel(frame []byte, w, x, y int) rgb {
	i := 3 * (y*w + x)
	return rgb{int(frame[i]), int(frame[i+1]), int(frame[i+2])}
}

func (c rgb) near(o rgb) bool {
	d := func(a, b int) bool { return a-b < 40 && b-a < 40 }
	return d(c.r, o.r) && d(c.g, o.g) && d(c.b, o.b)
}

// TestE2EComposite is the composite test: three WHIP publishers in
// one room send red, green and blue pictures with 440, 660 and 880 Hz
// tones; the composite's HLS, decoded by ffmpeg, shows the three colours in
// the grid's three tiles and carries the three tones. When the green one
// leaves, the composite has two tiles (red, blue) and no 660 Hz within 2 s
// of the leave, measured on the output's own timeline (its
// EXT-X-PROGRAM-DATE-TIME).
func TestE2EComposite(t *testing.T) {
	if !codec.Available {
		t.Skip("no codec support in this build")
	}
	checkNoLeaks(t)
	const W, H = 640, 360
	// The composite is a stream like any: here it is also pushed to a real
	// RTMP server (nginx-rtmp) by a streams rule on its name.
	n := startNginx(t)
	g := startGateway(t, fmt.Sprintf("rooms:\n  max_composites: 1\nstreams:\n  - match: \"*/composite\"\n    restream: [%q]\n", n.url("live/partymix")))
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	events := dialEvents(t, ctx, base)

	code, body := apiCall(t, "POST", base+"/v1/rooms", fmt.Sprintf(`{"name":"party","composite":{"width":%d,"height":%d}}`, W, H))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/rooms with a composite: %d %v", code, body)
	}
	if e := events.next("composite.started"); e.Stream != "party/composite" {
		t.Fatalf("composite.started %+v", e)
	}
	// The node's limit is one composite: a second room's is refused, clearly.
	apiCall(t, "POST", base+"/v1/rooms", `{"name":"other"}`)
	code, body = apiCall(t, "POST", base+"/v1/rooms/other/composite", "")
	if code != http.StatusConflict || body["code"] != "composite_limit" || !strings.Contains(fmt.Sprint(body["error"]), "max_composites") {
		t.Fatalf("composite over the limit: %d %v", code, body)
	}
	if code, body = apiCall(t, "POST", base+"/v1/rooms/nowhere/composite", ""); code != http.StatusNotFound || body["code"] != "room_not_found" {
		t.Fatalf("composite of an unknown room: %d %v", code, body)
	}
	if code, body = apiCall(t, "POST", base+"/v1/rooms/other/composite", `{"layout":"mosaic"}`); code != http.StatusBadRequest {
		t.Fatalf("bad layout: %d %v", code, body)
	}

	type who struct {
		name, video, audio string
		colour             rgb
	}
	people := []who{
		{"red", "../testdata/red.h264", "../testdata/tone440.ogg", rgb{255, 0, 0}},
		{"green", "../testdata/lime.h264", "../testdata/tone660.ogg", rgb{0, 255, 0}},
		{"blue", "../testdata/blue.h264", "../testdata/tone880.ogg", rgb{0, 0, 255}},
	}
	pubs := make([]*whipclient.Client, len(people))
	for i, p := range people {
		c, err := whipclient.Publish(ctx, base+"/whip/party/"+p.name, "", p.video, p.audio, whipclient.Options{LoopbackOnly: true, Loop: 10})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pubs[i] = c
		// Join order is layout order: wait for each before the next.
		waitFor(t, 10*time.Second, p.name+" in the composite", func() bool {
			_, in := apiCall(t, "GET", base+"/v1/rooms/party/composite", "")
			ps, _ := in["participants"].([]any)
			return len(ps) == i+1
		})
	}
	allIn := time.Now()

	// The composite's HLS: the multivariant playlist names a video and an
	// audio media playlist.
	var mv string
	waitFor(t, 15*time.Second, "composite HLS", func() bool {
		code, b := get(t, base+"/hls/party/composite/index.m3u8")
		mv = b
		return code == http.StatusOK
	})
	var videoPL, audioPL string
	for _, u := range mediaPlaylists(mv) {
		_, pl := get(t, base+"/hls/party/composite/"+u)
		if strings.Contains(pl, "video") || strings.Contains(u, "video") {
			videoPL = "/hls/party/composite/" + u
		} else {
			audioPL = "/hls/party/composite/" + u
		}
	}
	if videoPL == "" || audioPL == "" {
		t.Fatalf("media playlists of %q", mv)
	}

	// Let 4 s of all three pass through the composite and the packager.
	time.Sleep(time.Until(allIn.Add(4 * time.Second)))
	if err := pubs[1].Close(); err != nil {
		t.Logf("green's DELETE: %v", err)
	}
	left := time.Now()
	// The segments around the leave must be complete before we read them.
	time.Sleep(7 * time.Second)

	// Before the leave: three tiles, three tones.
	vf, vstart := download(t, base, videoPL, left.Add(-3*time.Second), left.Add(-500*time.Millisecond))
	frames := decodeFrames(t, vf, W/10, H/10)
	three := composite.Tiles(composite.Grid, 3, W/10, H/10)
	// The frame 1 s before the leave.
	i := int(left.Add(-time.Second).Sub(vstart).Seconds() * 10)
	if i < 0 || i >= len(frames) {
		t.Fatalf("frame %d of %d (segment from %s, leave at %s)", i, len(frames), vstart, left)
	}
	for k, r := range three {
		x, y := r.Center()
		if got := pixel(frames[i], W/10, x, y); !got.near(people[k].colour) {
			t.Errorf("before the leave, tile %d (%s) at (%d,%d) is %v", k, people[k].name, x*10, y*10, got)
		}
	}
	af, astart := download(t, base, audioPL, left.Add(-3*time.Second), left.Add(-500*time.Millisecond))
	pcm := decodeAudio(t, af)
	from := int(left.Add(-2*time.Second).Sub(astart).Seconds() * 8000)
	win := pcm[max(0, from):min(len(pcm), from+8000)]
	for _, f := range []float64{440, 660, 880} {
		if a := tone(win, f); a < 0.05 {
			t.Errorf("before the leave: %v Hz at amplitude %.3f", f, a)
		}
	}
	t.Logf("before the leave: 440/660/880 Hz at %.3f/%.3f/%.3f, 550 Hz (none sent) at %.3f",
		tone(win, 440), tone(win, 660), tone(win, 880), tone(win, 550))

	// After the leave: the first frame with the two-tile layout, and the
	// first 100 ms window without 660 Hz, on the output's timeline.
	vf, vstart = download(t, base, videoPL, left.Add(-time.Second), left.Add(4*time.Second))
	frames = decodeFrames(t, vf, W/10, H/10)
	two := composite.Tiles(composite.Grid, 2, W/10, H/10)
	layoutAt := time.Duration(-1)
	for n, fr := range frames {
		at := vstart.Add(time.Duration(n) * 100 * time.Millisecond)
		if at.Before(left) {
			continue
		}
		x0, y0 := two[0].Center()
		x1, y1 := two[1].Center()
		if pixel(fr, W/10, x0, y0).near(people[0].colour) && pixel(fr, W/10, x1, y1).near(people[2].colour) {
			layoutAt = at.Sub(left)
			break
		}
	}
	af, astart = download(t, base, audioPL, left.Add(-time.Second), left.Add(4*time.Second))
	pcm = decodeAudio(t, af)
	toneGone := time.Duration(-1)
	for s := max(0, int(left.Sub(astart).Seconds()*8000)); s+800 <= len(pcm); s += 400 {
		if tone(pcm[s:s+800], 660) < 0.01 {
			// The search starts at the leave; the sample index rounds it
			// down by up to 1/8000 s, which is not "before the leave".
			toneGone = max(astart.Add(time.Duration(s)*time.Second/8000).Sub(left), 0)
			break
		}
	}
	t.Logf("after the leave: two tiles at +%v, 660 Hz gone at +%v (output timeline)", layoutAt, toneGone)
	if layoutAt < 0 || layoutAt > 2*time.Second {
		t.Errorf("two-tile layout %v after the leave, want within 2 s", layoutAt)
	}
	if toneGone < 0 || toneGone > 2*time.Second {
		t.Errorf("660 Hz gone %v after the leave, want within 2 s", toneGone)
	}
	// The others are still heard after it.
	end := int(left.Add(3*time.Second).Sub(astart).Seconds() * 8000)
	if end <= len(pcm) {
		win = pcm[end-8000 : end]
		if tone(win, 440) < 0.05 || tone(win, 880) < 0.05 || tone(win, 660) > 0.01 {
			t.Errorf("after the leave: 440/660/880 Hz at %.3f/%.3f/%.3f", tone(win, 440), tone(win, 660), tone(win, 880))
		}
	}
	// No gap around the leave: consecutive pictures are at most 2 frame
	// periods apart (the composite skips a tick only when the machine
	// stalls), and the sound continues (checked above by its tones).
	if gap := maxPacketGap(t, vf); gap > 0.067 {
		t.Errorf("a %.3f s gap between pictures around the leave", gap)
	}
	// The whole composite output decodes without an error.
	if msg := ffmpegDecodeErrors(vf); msg != "" {
		t.Errorf("ffmpeg on the composite's video: %s", msg)
	}

	// The room's end stops the composite; its stream goes away.
	if code, _ := apiCall(t, "DELETE", base+"/v1/rooms/party", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE room: %d", code)
	}
	if e := events.next("composite.stopped"); e.Stream != "party/composite" {
		t.Fatalf("composite.stopped %+v", e)
	}
	waitFor(t, 5*time.Second, "composite gone", func() bool {
		code, _ := apiCall(t, "GET", base+"/v1/rooms/party/composite", "")
		return code == http.StatusNotFound
	})
	waitFor(t, 5*time.Second, "codecs released", func() bool { return codec.LiveVideoCodecs() == 0 })

	// What nginx recorded of the composite: h264 + aac, decodes from its
	// first frame, as long as the composite ran (~12 s).
	waitFor(t, 5*time.Second, "restream stopped", func() bool { return len(g.Restream.Status("party/composite")) == 0 })
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files of the composite, want 1", len(recs))
	}
	checkFLVRecording(t, recs[0], 8, 30)
}
