package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/storage"
)

// The resolution fixture (testdata/README.md): 15 s at 30 fps, 320x180 for
// 5 s, 1280x720 for 5 s, 640x360 for 5 s, each part its own H.264 coded
// sequence (new SPS/PPS), keyframes every 2 s within a part.
const (
	resVideo   = "../testdata/res.h264"
	resAudio   = "../testdata/res.ogg"
	resSeconds = 15.0
	// resLoops is how many times the publisher sends the fixture: 45 s, so
	// that players which first play 10 s or more in on a busy two-core
	// machine still watch their 24 s before the publish ends (with 30 s, an
	// hls.js that started 8 s in reached the end and "stalled" there, as
	// the ramp test's players did).
	resLoops = 3
)

// watchResult is what browser/watch.mjs prints.
type watchResult struct {
	Player  string       `json:"player"`
	Playing bool         `json:"playing"`
	Samples [][2]float64 `json:"samples"`
	Stall   float64      `json:"stall"`
	StallAt []float64    `json:"stallAt"`
	Sizes   [][2]any     `json:"sizes"`
	Errors  []string     `json:"errors"`
	Resets  int          `json:"resets"`
	Log     []string     `json:"log"`
	// Startup is the time from the page's load to the first "playing".
	Startup float64 `json:"startup"`
	// Manifest is the time from the page's load to its first playlist or
	// MPD loaded.
	Manifest float64 `json:"manifest"`
	// HLog is hls.js's last events (fragments buffered, playlists, errors).
	HLog []string `json:"hlog"`
	// StallState is what the player held when it first stood still for
	// 1 s: printed for a stall over 1 s, to say why.
	StallState *struct {
		CurrentTime float64      `json:"currentTime"`
		Buffered    [][2]float64 `json:"buffered"`
		ReadyState  int          `json:"readyState"`
		HLog        []string     `json:"hlog"`
	} `json:"stallState"`
}

// runWatch runs browser/watch.mjs on url with player ("dash" or "hls") and
// the given flags (--seconds, --timeout, ...), and returns what it saw; a
// driver that fails or prints no result is reported as an error of it.
func runWatch(ctx context.Context, node, player, url string, flags ...string) watchResult {
	args := append([]string{"watch.mjs", "--player", player, "--url", url, "--chromium", chromiumPath}, flags...)
	if l := os.Getenv("WHIPCAST_DASHJS_LOG"); l != "" && !slices.Contains(flags, "--log") {
		args = append(args, "--log", l) // debugging aid, for any test's players
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = "browser"
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r watchResult
	if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("driver failed: %v %s", err, out))
	}
	return r
}

// frameSizes decodes file with ffmpeg and counts its video frames by size.
func frameSizes(t *testing.T, file string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=width,height",
		"-of", "csv=p=0", file).Output()
	if err != nil {
		t.Errorf("ffprobe frames of %s: %v", file, err)
	}
	sizes := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(strings.TrimSuffix(l, ",")); l != "" {
			sizes[strings.ReplaceAll(l, ",", "x")]++
		}
	}
	return sizes
}

// checkMPDPeriods checks what a player relies on in a live MPD with
// several Periods: no segment URL in two Periods, every closed Period as
// long as its segments with the next starting at its end.
func checkMPDPeriods(t *testing.T, m *mpd, body string, seen map[string]string, reported map[string]bool) {
	t.Helper()
	fail := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !reported[msg] {
			reported[msg] = true
			t.Error(msg)
		}
	}
	for pi, p := range m.Periods {
		for ai := range p.AdaptationSets {
			_, segs := m.segments(pi, ai)
			for _, s := range segs {
				if prev, ok := seen[s.url]; ok && prev != p.ID {
					fail("%s announced in Period %s and %s", s.url, prev, p.ID)
				}
				seen[s.url] = p.ID
			}
		}
	}
	for pi := 0; pi+1 < len(m.Periods); pi++ {
		p, next := m.Periods[pi], m.Periods[pi+1]
		start, err1 := parseISODuration(p.Start)
		nextStart, err2 := parseISODuration(next.Start)
		dur, err3 := parseISODuration(p.Duration)
		if err1 != nil || err2 != nil || err3 != nil || p.Duration == "" {
			fail("Period %s: start %q duration %q, next start %q", p.ID, p.Start, p.Duration, next.Start)
			continue
		}
		if math.Abs(start+dur-nextStart) > 1e-5 {
			fail("Period %s ends at %.6f, the next starts at %.6f", p.ID, start+dur, nextStart)
		}
		for ai, as := range p.AdaptationSets {
			if as.ContentType != "video" {
				continue
			}
			_, segs := m.segments(pi, ai)
			if len(segs) == 0 {
				continue
			}
			last := segs[len(segs)-1]
			end := float64(last.t+last.d-as.Template.PTO) / float64(as.Template.Timescale)
			if math.Abs(end-dur) > 1e-5 {
				fail("Period %s: video segments end %.6f s in, @duration %.6f s", p.ID, end, dur)
			}
		}
	}
}

// TestE2EResolutionChanges publishes the resolution fixture twice in a row
// (320x180 → 1280x720 → 640x360 → 320x180 → ...: five changes in 30 s, each
// a new SPS at a keyframe) while dash.js and hls.js play it in headless
// Chromium from the first second, and checks every output: the players
// play through every change with no error and no stall of a segment, the
// live MPD stays exact, gohlslib parses every playlist, ffprobe reads HLS
// and DASH, the RTMP copy in nginx-rtmp and the recording decode with no
// error and hold all three sizes.
//
// Debugging aids (environment): WHIPCAST_EXTRA_CFG is YAML put before the
// test's config (e.g. "dash: {low_latency: false}\n" runs it on the MPD of
// complete segments only), WHIPCAST_MPD_DUMP a folder that gets every live
// MPD read, WHIPCAST_DASHJS_LOG a dash.js log level (4: info) whose log the
// test prints.
func TestE2EResolutionChanges(t *testing.T) {
	node := needBrowser(t)
	n := startNginx(t)
	checkNoLeaks(t)
	dir := t.TempDir()
	g := startGateway(t, fmt.Sprintf(os.Getenv("WHIPCAST_EXTRA_CFG")+`storage: {type: local, path: %s/rec, spool_dir: %s/spool}
streams:
  - match: "*"
    record: true
    restream: [%q]
`, dir, dir, n.url("live/{stream}")))
	base := "http://" + g.HTTPAddr().String()
	const stream = "res"
	mpdURL := base + "/dash/" + stream + "/manifest.mpd"
	hlsURL := base + "/hls/" + stream + "/index.m3u8"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", resVideo, resAudio,
		whipclient.Options{LoopbackOnly: true, Loop: resLoops})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	// The players open the stream at once, before its first segment exists.
	var wg sync.WaitGroup
	results := map[string]watchResult{}
	var mu sync.Mutex
	for player, url := range map[string]string{"dash": mpdURL, "hls": hlsURL} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, pcancel := context.WithTimeout(ctx, 90*time.Second)
			defer pcancel()
			r := runWatch(pctx, node, player, url, "--seconds", "24", "--timeout", "20")
			mu.Lock()
			results[player] = r
			mu.Unlock()
		}()
	}

	// gohlslib's client reads the live LL-HLS through the changes too
	// (demuxing: every access unit in order, no decode error reported).
	var gohls played
	wg.Add(1)
	go func() {
		defer wg.Done()
		gohls = playHLS(t, hlsURL, 20*time.Second)
	}()

	// Meanwhile, read the live MPD and playlists as often as a player would.
	seen := map[string]string{}
	reported := map[string]bool{}
	var periods, polls int
	parsed := map[string]int{}
	datesOff := false // reported once
	done := make(chan struct{})
	go func() { _, _ = pub.Wait(); close(done) }()
poll:
	for {
		select {
		case <-done:
			break poll
		case <-time.After(150 * time.Millisecond):
		}
		if code, m := getMPD(t, mpdURL); code == http.StatusOK && m.Type == "dynamic" {
			_, body := get(t, mpdURL)
			if d := os.Getenv("WHIPCAST_MPD_DUMP"); d != "" { // debugging aid: every MPD read
				_ = os.WriteFile(filepath.Join(d, fmt.Sprintf("%04d.mpd", polls)), []byte(body), 0o644)
			}
			checkMPDPeriods(t, m, body, seen, reported)
			periods = max(periods, len(m.Periods))
			polls++
		}
		code, mv := get(t, hlsURL)
		if code != http.StatusOK {
			continue
		}
		if _, err := playlist.Unmarshal([]byte(mv)); err != nil {
			t.Errorf("gohlslib cannot parse the multivariant playlist: %v\n%s", err, mv)
		}
		parsed["multivariant"]++
		mps := map[string]*playlist.Media{}
		for _, pl := range mediaPlaylists(mv) {
			code, body := get(t, base+"/hls/"+stream+"/"+pl)
			if code != http.StatusOK {
				continue
			}
			p, err := playlist.Unmarshal([]byte(body))
			if err != nil {
				t.Errorf("gohlslib cannot parse %s: %v\n%s", pl, err, body)
			}
			if m, ok := p.(*playlist.Media); ok {
				mps[pl] = m
			}
			parsed[pl]++
			if pl == "video.m3u8" && strings.Count(body, "#EXT-X-DISCONTINUITY\n") > 0 &&
				!strings.Contains(body, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:") {
				t.Errorf("a video discontinuity without a new EXT-X-MAP:\n%s", body)
			}
		}
		if !datesOff {
			datesOff = !checkDatesAligned(t, mps["video.m3u8"], mps["audio.m3u8"])
		}
	}
	t.Logf("%d live MPDs read (up to %d Periods at once), playlists parsed: %v", polls, periods, parsed)
	if periods < 2 {
		t.Errorf("the MPD never had more than %d Period", periods)
	}

	// The end: the MPD turns static and the playlists get ENDLIST; ffprobe
	// then reads DASH and HLS, every frame decoding.
	_ = pub.Close()
	waitFor(t, 15*time.Second, "a static MPD and ended playlists", func() bool {
		code, m := getMPD(t, mpdURL)
		c2, pl := get(t, base+"/hls/"+stream+"/video.m3u8")
		return code == http.StatusOK && m.Type == "static" && c2 == http.StatusOK && strings.Contains(pl, "#EXT-X-ENDLIST")
	})
	if _, m := getMPD(t, mpdURL); m != nil {
		checkMPDPeriods(t, m, "", seen, reported)
	}
	// FFmpeg 5.1 reads neither a second EXT-X-MAP (its mov demuxer skips a
	// "duplicated MOOV") nor a second DASH Period, so each run of one init
	// is read on its own: the init and its segments as the playlist and the
	// MPD name them, concatenated, as a player's source buffer gets them.
	hlsRuns := hlsInitRuns(t, base+"/hls/"+stream+"/", "video.m3u8")
	dashRuns := dashInitRuns(t, base+"/dash/"+stream+"/", mpdURL)
	for name, runs := range map[string][][]string{"HLS": hlsRuns, "DASH": dashRuns} {
		all := map[string]int{}
		for i, urls := range runs {
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.mp4", name, i))
			fetchConcat(t, urls, file)
			if e := ffmpegDecodeErrors(file); e != "" {
				t.Errorf("%s run %d (%s): ffmpeg: %s", name, i, urls[0], e)
			}
			sizes := frameSizes(t, file)
			if len(sizes) != 1 {
				t.Errorf("%s run %d (%s): frames by size %v, want one size per init", name, i, urls[0], sizes)
			}
			for k, v := range sizes {
				all[k] += v
			}
		}
		t.Logf("%s: %d runs of one init in the final window, frames by size %v", name, len(runs), all)
		if len(all) < 2 {
			t.Errorf("%s: frames of %d sizes in the window, want 2+", name, len(all))
		}
	}
	// Audio has one init: ffprobe reads the HLS audio playlist whole.
	if e := ffmpegDecodeErrors(base + "/hls/" + stream + "/audio.m3u8"); e != "" {
		t.Errorf("ffmpeg decode of the HLS audio: %s", e)
	}

	wg.Wait()
	t.Logf("gohlslib client (20 s of stream time wanted): %d video frames over %.2f s of stream time, %d audio frames, non-monotonic: %q", gohls.video,
		float64(gohls.lastVideoDTS-gohls.firstVideoDTS)/float64(max(gohls.videoClockRate, 1)), gohls.audio, gohls.nonMonotonic)
	if len(gohls.videoJumps) > 0 {
		t.Logf("gohlslib client: video DTS jumps (s) %v", gohls.videoJumps)
	}
	// It played through the changes: measured in stream time, not against
	// the wall clock, which failed on a busy machine (436 of 450 frames in
	// 20 s with two suites at once: the client started late). Alone here
	// it gets ~87 % of the frames of the span it covers (465 over 17.8 s);
	// where the rest goes (the init changes are the suspect) is not known.
	span := float64(gohls.lastVideoDTS-gohls.firstVideoDTS) / float64(max(gohls.videoClockRate, 1))
	if span < 12 || float64(gohls.video) < 0.8*30*span || gohls.nonMonotonic != "" {
		t.Errorf("gohlslib client: %d video frames over %.1f s of stream time (want 12 s+, 80 %% of its frames), non-monotonic %q",
			gohls.video, span, gohls.nonMonotonic)
	}
	for _, player := range []string{"dash", "hls"} {
		checkWatched(t, player, results[player], 3)
	}

	// RTMP: nginx-rtmp's copy has all three sizes and decodes cleanly.
	waitFor(t, 10*time.Second, "outputs stopped", func() bool { return len(g.Restream.Status(stream)) == 0 })
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files, want 1", len(recs))
	}
	if sizes := frameSizes(t, recs[0]); len(sizes) != 3 {
		t.Errorf("RTMP: frames by size %v, want 3 sizes", sizes)
	} else {
		t.Logf("RTMP frames by size: %v", sizes)
	}
	if e := ffmpegDecodeErrors(recs[0]); e != "" {
		t.Errorf("ffmpeg decode of the RTMP copy: %s", e)
	}

	// The recording: the MP4 decodes with ffmpeg -v error silent, all sizes.
	st, err := storage.NewLocal(dir + "/rec")
	if err != nil {
		t.Fatal(err)
	}
	rec := waitRecordingLocal(t, st, stream, 30*time.Second)
	mp4 := filepath.Join(rec, "recording.mp4")
	if e := ffmpegDecodeErrors(mp4); e != "" {
		t.Errorf("ffmpeg decode of recording.mp4: %s", e)
	}
	// Its DASH MPD has a Period per change, each with its own init.
	if b, err := os.ReadFile(filepath.Join(rec, "manifest.mpd")); err != nil {
		t.Error(err)
	} else if n, inits := strings.Count(string(b), "<Period "), strings.Count(string(b), "video_init_"); n < 6 || inits != n {
		t.Errorf("recording's manifest.mpd: %d Periods, %d video inits, want 6 and one each (5 changes):\n%s", n, inits, b)
	}
	sizes := frameSizes(t, mp4)
	t.Logf("recording.mp4 frames by size: %v", sizes)
	if len(sizes) != 3 {
		t.Errorf("recording.mp4: frames by size %v, want 3 sizes", sizes)
	}
	total := 0
	for _, c := range sizes {
		total += c
	}
	if want := int(resLoops * resSeconds * 30); total < want-30 {
		t.Errorf("recording.mp4: %d frames, %d were sent", total, want)
	}
}

// checkDatesAligned checks that the video and audio playlists date the same
// media sequence number alike: the audio segment starts with its first
// sample at or after the video's cut, so its date lies at most one AAC frame
// (21.3 ms) after the video's (the dates have millisecond precision). hls.js
// aligns the two playlists by these dates after a discontinuity; audio dated
// 60 ms late made it stop loading audio there (a 3 s stall). It reports
// whether they agree.
func checkDatesAligned(t *testing.T, video, audio *playlist.Media) bool {
	t.Helper()
	if video == nil || audio == nil {
		return true
	}
	dates := map[int]time.Time{}
	for i, s := range video.Segments {
		if s.DateTime != nil {
			dates[video.MediaSequence+i] = *s.DateTime
		}
	}
	for i, s := range audio.Segments {
		v, ok := dates[audio.MediaSequence+i]
		if s.DateTime == nil || !ok {
			continue
		}
		if d := s.DateTime.Sub(v); d < -2*time.Millisecond || d > 24*time.Millisecond {
			t.Errorf("segment %d: audio dated %v from the video (EXT-X-PROGRAM-DATE-TIME %v and %v), want 0 to one AAC frame after",
				audio.MediaSequence+i, d, *s.DateTime, v)
			return false
		}
	}
	return true
}

// checkWatched judges what watch.mjs saw a player do through resolution
// changes, as a viewer would: it played (currentTime advanced at least 10
// s), no error but hls.js's non-fatal buffer stall and seek over a hole
// (judged by the stall bound instead), no decode-error recovery, no stall
// over one segment (2 s), and at least minSizes picture sizes shown.
func checkWatched(t *testing.T, player string, r watchResult, minSizes int) {
	t.Helper()
	adv := 0.0
	if n := len(r.Samples); n > 1 {
		adv = r.Samples[n-1][1] - r.Samples[0][1]
	}
	t.Logf("%s: playing=%v, currentTime advanced %.1f s over %d samples, longest stall %.1f s (from %v: wall s, currentTime), sizes seen %v, resets %d",
		player, r.Playing, adv, len(r.Samples), r.Stall, r.StallAt, r.Sizes, r.Resets)
	for _, l := range r.Log {
		t.Logf("%s log: %s", player, l)
	}
	if !r.Playing || adv < 10 {
		t.Errorf("%s: did not play through (advanced %.1f s)", player, adv)
	}
	unexpected := false
	for _, e := range r.Errors {
		// Non-fatal and recovered by hls.js itself; the stall check below
		// says whether the viewer saw anything of them. "aborted" is
		// hls.js's INTERNAL_ABORTED, raised only from its loaders' onAbort,
		// when hls.js itself cancels a part or init it no longer wants (a
		// refused or reset response from us is a fragLoadError instead).
		// bufferNudgeOnStall is hls.js moving the playhead a little at a
		// stall (seen once under two suites at once, a 1.3 s stall).
		// bufferAppendNoProgress (hls.js 1.7) is its warning that a whole
		// fragment added nothing to the buffered ranges; it retries, then
		// marks it a gap. Seen once in ~20 late-player runs (a 0.2 s stall),
		// its fragment not named then; the message now names it, for the
		// note of whoever sees it next.
		if player == "hls" && (strings.HasPrefix(e, "mediaError: bufferStalledError") || strings.HasPrefix(e, "mediaError: bufferSeekOverHole") ||
			strings.HasPrefix(e, "mediaError: bufferAppendNoProgress") || strings.HasPrefix(e, "mediaError: bufferNudgeOnStall") ||
			strings.HasPrefix(e, "networkError: aborted")) {
			t.Logf("hls: %s", e)
			continue
		}
		t.Errorf("%s: %s", player, e)
		unexpected = true
	}
	if unexpected {
		for _, l := range r.HLog {
			t.Logf("%s event: %s", player, l)
		}
	}
	if r.Resets > 0 {
		t.Errorf("%s: %d decode-error recoveries (MediaSource resets)", player, r.Resets)
	}
	if r.Stall > 2 {
		t.Errorf("%s: currentTime stood still for %.1f s, more than a segment", player, r.Stall)
	}
	if r.Stall > 1 { // what the player held then, also for a stall that passes
		if st := r.StallState; st != nil {
			t.Logf("%s at the stall: currentTime %.3f, buffered %v, readyState %d", player, st.CurrentTime, st.Buffered, st.ReadyState)
			for _, l := range st.HLog {
				t.Logf("%s event: %s", player, l)
			}
		}
	}
	if distinct := sizesSeen(r.Sizes); distinct < minSizes {
		t.Errorf("%s: the player showed %d picture sizes, want at least %d", player, distinct, minSizes)
	}
}

// sizesSeen counts the distinct WxH a player reported.
func sizesSeen(s [][2]any) int {
	m := map[string]bool{}
	for _, e := range s {
		if v, ok := e[1].(string); ok && v != "0x0" {
			m[v] = true
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return len(keys)
}

// waitRecordingLocal waits for a finished recording of stream in a local
// store (its index.m3u8 is the last file written) and returns its folder.
func waitRecordingLocal(t *testing.T, st storage.Store, stream string, within time.Duration) string {
	t.Helper()
	var found string
	waitFor(t, within, "the finished recording", func() bool {
		keys, err := st.List(context.Background(), stream+"/")
		if err != nil {
			return false
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/index.m3u8") {
				found = strings.TrimSuffix(k, "index.m3u8")
				return true
			}
		}
		return false
	})
	out := t.TempDir()
	keys, _ := st.List(context.Background(), found)
	for _, k := range keys {
		b, err := st.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, strings.TrimPrefix(k, found)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// hlsInitRuns splits a media playlist into runs of one EXT-X-MAP: each the
// init's URL followed by its segments' URLs.
func hlsInitRuns(t *testing.T, dir, name string) [][]string {
	t.Helper()
	code, body := get(t, dir+name)
	if code != http.StatusOK {
		t.Fatalf("%s: %d", name, code)
	}
	var runs [][]string
	for _, l := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:URI=\""):
			uri, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXT-X-MAP:URI=\""), "\"")
			runs = append(runs, []string{dir + uri})
		case l != "" && !strings.HasPrefix(l, "#") && len(runs) > 0:
			runs[len(runs)-1] = append(runs[len(runs)-1], dir+l)
		}
	}
	return runs
}

// dashInitRuns lists, per Period of the MPD, its video init and segments.
func dashInitRuns(t *testing.T, dir, url string) [][]string {
	t.Helper()
	code, m := getMPD(t, url)
	if code != http.StatusOK {
		t.Fatalf("MPD: %d", code)
	}
	var runs [][]string
	for pi, p := range m.Periods {
		for ai, as := range p.AdaptationSets {
			if as.ContentType != "video" {
				continue
			}
			init, segs := m.segments(pi, ai)
			run := []string{dir + init}
			for _, s := range segs {
				run = append(run, dir+s.url)
			}
			if len(segs) > 0 {
				runs = append(runs, run)
			}
		}
	}
	return runs
}

// fetchConcat downloads urls into one file.
func fetchConcat(t *testing.T, urls []string, file string) {
	t.Helper()
	var b []byte
	for _, u := range urls {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", u, resp.StatusCode, err)
		}
		b = append(b, body...)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
