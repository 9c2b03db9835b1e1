package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/outputs/rtmp"
	"github.com/whipcast/whipcast/web"
)

// reconnectWindow is the window of the reconnect tests: long enough for the
// gateway to notice a publisher that vanished without a DELETE (its
// PeerConnection closed: DTLS close_notify, else ICE failure within ~15 s).
const reconnectWindow = 20 * time.Second

// nextOf returns the next event whose type is one of types, skipping others.
func (es *eventSocket) nextOf(types ...string) web.Event {
	es.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), reconnectWindow+15*time.Second)
		_, b, err := es.ws.Read(ctx)
		cancel()
		if err != nil {
			es.t.Fatalf("waiting for %v: %v", types, err)
		}
		var e web.Event
		if err := json.Unmarshal(b, &e); err != nil {
			es.t.Fatal(err)
		}
		for _, w := range types {
			if e.Type == w {
				return e
			}
		}
	}
}

// expect reads the next stream or recording event and fails unless it is want.
func (es *eventSocket) expect(want string) web.Event {
	es.t.Helper()
	e := es.nextOf("stream.started", "stream.interrupted", "stream.resumed", "stream.ended",
		"recording.started", "recording.finished", "recording.failed")
	if e.Type != want {
		es.t.Fatalf("event %s %v, want %s", e.Type, e.Data, want)
	}
	return e
}

// playlistWatch polls a live media playlist and keeps what a player would
// have seen: every answer's status, ENDLIST, media sequence numbers and
// discontinuities.
type playlistWatch struct {
	mu        sync.Mutex
	gets      int
	bad       []string // non-200 answers after the first 200
	endlist   time.Time
	msn       []int
	disc      bool
	discSeq   int
	lastMSN   int
	stop      chan struct{}
	done      chan struct{}
	lastBody  string
	segTitles int
}

var (
	reMSN     = regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`)
	reDiscSeq = regexp.MustCompile(`#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)`)
)

func watchPlaylist(t *testing.T, url string) *playlistWatch {
	w := &playlistWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		seen200 := false
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			code, body := get(t, url)
			w.mu.Lock()
			w.gets++
			if code == 200 {
				seen200 = true
				w.lastBody = body
				if m := reMSN.FindStringSubmatch(body); m != nil {
					n, _ := strconv.Atoi(m[1])
					w.msn = append(w.msn, n)
				}
				if strings.Contains(body, "#EXT-X-DISCONTINUITY\n") {
					w.disc = true
				}
				if m := reDiscSeq.FindStringSubmatch(body); m != nil {
					n, _ := strconv.Atoi(m[1])
					w.discSeq = max(w.discSeq, n)
				}
				if strings.Contains(body, "#EXT-X-ENDLIST") && w.endlist.IsZero() {
					w.endlist = time.Now()
				}
			} else if seen200 {
				w.bad = append(w.bad, fmt.Sprint(code))
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *playlistWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *playlistWatch) endlistSeen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.endlist.IsZero()
}

// flvPackets returns each stream's packet timestamps (seconds) in file order.
func flvPackets(t *testing.T, file string) map[string][]float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=codec_type,dts_time",
		"-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", file, err)
	}
	got := map[string][]float64{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kind, ts, ok := strings.Cut(l, ",")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(ts), 64)
		if err != nil {
			continue
		}
		got[kind] = append(got[kind], f)
	}
	return got
}

// TestE2EReconnect publishes four times to one name: the first publisher
// leaves with a DELETE, the second vanishes without one (its PeerConnection
// closed, as a crashed app's would be), the third stops sending with its
// PeerConnection up (a stalled app or network) and is taken over by the
// fourth, each followed within webrtc.reconnect_window by the next. A second
// publisher while one is live gets 409. Every output goes on as one: the same
// HLS playlist URL answers throughout with no EXT-X-ENDLIST and a media
// sequence that only grows, and marks each resume with EXT-X-DISCONTINUITY;
// the DASH MPD stays dynamic with a Period per publish; nginx-rtmp keeps one
// connection and writes one FLV whose timestamps never go back and span the
// publishes and the gaps; the recording is one session; the stream's
// timeline goes on across each resume with a Discontinuity per track. Events say
// stream.interrupted and stream.resumed, and stream.ended (then ENDLIST,
// recording.finished) only once the window has passed after the last
// publisher.
//
// On a branch without the packagers' Discontinuity support (issue 11, RES),
// the EXT-X-DISCONTINUITY and second-Period checks fail; the rest holds.
func TestE2EReconnect(t *testing.T) {
	n := startNginx(t)
	checkNoLeaks(t)
	dir := t.TempDir()
	g := startGateway(t, fmt.Sprintf(`  reconnect_window: %s
storage:
  type: local
  path: %s/recordings
  spool_dir: %s/spool
streams:
  - match: "re/*"
    record: true
    restream: [%q]
`, reconnectWindow, dir, dir, n.url("live/{stream}")))
	base := "http://" + g.HTTPAddr().String()
	const stream = "re/cam"
	ev := dialEvents(t, context.Background(), base)

	const each = 6 * time.Second
	publishFor := func(skipDelete bool) (*whipclient.Client, time.Time) {
		t.Helper()
		pub := publish(t, g, stream, whipclient.Options{MaxDuration: each, SkipDelete: skipDelete})
		st, err := pub.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Close(); err != nil {
			t.Fatal(err)
		}
		return pub, st.Start
	}

	// 1: publish, wait for the outputs, leave with DELETE.
	pub1 := publish(t, g, stream, whipclient.Options{MaxDuration: each})
	ev.expect("stream.started")
	ev.expect("recording.started")
	hlsURL := videoPlaylistURL(t, base, stream)
	waitFor(t, 5*time.Second, "RTMP output live", func() bool { return restreamState(g, stream, 0).State == rtmp.StateLive })
	watch := watchPlaylist(t, hlsURL)
	tap := tapStream(t, g, stream)
	// A second publisher while the first is live is refused.
	if _, err := whipclient.Publish(context.Background(), base+"/whip/"+stream, "", fixtureVideo, fixtureAudio,
		whipclient.Options{LoopbackOnly: true}); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("second publisher of a live stream: %v, want 409", err)
	}
	st1, err := pub1.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub1.Close(); err != nil {
		t.Fatal(err)
	}
	firstStart := st1.Start
	if e := ev.expect("stream.interrupted"); e.Data["reason"] != "unpublished" {
		t.Errorf("interrupted by DELETE: reason %v", e.Data["reason"])
	}
	checkInterrupted(t, base, stream)
	if s := restreamState(g, stream, 0); s.State != rtmp.StateLive {
		t.Errorf("RTMP output %s during the interruption, want live", s.State)
	}
	time.Sleep(2 * time.Second) // the publisher's gap

	// 2: resume, then vanish without a DELETE.
	done2 := make(chan struct{})
	go func() {
		defer close(done2)
		publishFor(true)
	}()
	if e := ev.expect("stream.resumed"); e.Data["resumes"] != float64(1) {
		t.Errorf("stream.resumed %v", e.Data)
	}
	// While the second publisher is live: the MPD is dynamic and has a
	// Period for each publish (the second from the resume on).
	time.Sleep(each / 2)
	if code, m := getMPD(t, base+"/dash/"+stream+"/manifest.mpd"); code != 200 || m.Type != "dynamic" {
		t.Errorf("MPD after the resume: %d %+v, want a dynamic MPD", code, m)
	} else if len(m.Periods) < 2 {
		t.Errorf("MPD after the resume has %d Period(s), want a new Period for the resumed publish (needs the packagers' Discontinuity support)", len(m.Periods))
	}
	<-done2
	t.Logf("crashed publisher closed its PeerConnection at %v", time.Now().Format(time.TimeOnly))
	e := ev.expect("stream.interrupted")
	t.Logf("crash noticed at %v: %v", time.Now().Format(time.TimeOnly), e.Data["reason"])
	time.Sleep(2 * time.Second)

	// 3: resume again, then freeze: the PeerConnection stays up but no
	// media comes (a stalled app or network). A new publish after 3 s of
	// silence takes the stream over instead of getting 409 until ICE or the
	// media timeout give up on the old session.
	pub3 := publish(t, g, stream, whipclient.Options{MaxDuration: each, SkipDelete: true})
	ev.expect("stream.resumed")
	if _, err := pub3.Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4500 * time.Millisecond) // past ingest's 3 s without media

	// 4: take over, leave with DELETE; then the window passes.
	done4 := make(chan struct{})
	go func() {
		defer close(done4)
		publishFor(false)
	}()
	if e := ev.expect("stream.interrupted"); !strings.Contains(fmt.Sprint(e.Data["reason"]), "replaced") {
		t.Errorf("frozen publisher interrupted with reason %v, want replaced", e.Data["reason"])
	}
	ev.expect("stream.resumed")
	<-done4
	lastEnd := time.Now()
	_ = pub3.Close()
	ev.expect("stream.interrupted")
	if watch.endlistSeen() {
		t.Error("EXT-X-ENDLIST during the reconnect window")
	}
	e = ev.expect("stream.ended")
	if d := time.Since(lastEnd); d < reconnectWindow/2 {
		t.Errorf("stream.ended %v after the last publisher left, want after the %v window", d, reconnectWindow)
	}
	waitFor(t, 10*time.Second, "EXT-X-ENDLIST after the window", watch.endlistSeen)
	waitFor(t, 10*time.Second, "a static MPD after the window", func() bool {
		code, m := getMPD(t, base+"/dash/"+stream+"/manifest.mpd")
		return code == 200 && m.Type == "static"
	})
	watch.close()
	total := lastEnd.Sub(firstStart).Seconds()

	watch.mu.Lock()
	t.Logf("playlist: %d GETs, media sequence %v…%v, discontinuity %v (sequence %d)",
		watch.gets, watch.msn[:min(1, len(watch.msn))], watch.msn[max(0, len(watch.msn)-1):], watch.disc, watch.discSeq)
	if len(watch.bad) > 0 {
		t.Errorf("the playlist URL answered %v during the publish", watch.bad)
	}
	for i := 1; i < len(watch.msn); i++ {
		if watch.msn[i] < watch.msn[i-1] {
			t.Errorf("media sequence went back: %d after %d", watch.msn[i], watch.msn[i-1])
			break
		}
	}
	if len(watch.msn) < 2 || watch.msn[len(watch.msn)-1] <= watch.msn[0] {
		t.Errorf("media sequence did not increase: %v", watch.msn)
	}
	if !watch.disc {
		t.Errorf("no EXT-X-DISCONTINUITY after a resume (needs the packagers' Discontinuity support); last playlist:\n%s", watch.lastBody)
	}
	watch.mu.Unlock()

	tap.check(t, 3)

	// The recording is one session over the three publishes.
	if e := ev.expect("recording.finished"); e.Stream != stream {
		t.Errorf("recording.finished %+v", e)
	}
	var mp4s []string
	_ = filepath.WalkDir(filepath.Join(dir, "recordings"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "recording.mp4" {
			mp4s = append(mp4s, p)
		}
		return nil
	})
	if len(mp4s) != 1 {
		t.Fatalf("recordings %v, want one session", mp4s)
	}
	p := runProbe(t, mp4s[0], false)
	t.Logf("recording: %.3f s for %.1f s from the first publish's start to the last one's end", p.duration(), total)
	if d := p.duration(); d < total-2.5 || d > total+1.5 {
		t.Errorf("recording lasts %.3f s, want ≈ %.1f s (publishes and gaps)", d, total)
	}
	if e := ffmpegDecodeErrors(mp4s[0]); e != "" {
		t.Errorf("ffmpeg decode of the recording: %s", e)
	}

	// RTMP: one connection, one FLV, timestamps that never go back.
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files, want 1 (the RTMP connection was kept)", len(recs))
	}
	checkFLVRecording(t, recs[0], total-2.5, total+1.5)
	for kind, ts := range flvPackets(t, recs[0]) {
		for i := 1; i < len(ts); i++ {
			if ts[i] < ts[i-1] {
				t.Errorf("FLV %s timestamp went back: %.3f after %.3f", kind, ts[i], ts[i-1])
				break
			}
		}
	}
}

// streamTap reads the stream's frames as the outputs get them.
type streamTap struct {
	frames []tapFrame
	done   chan struct{}
}

type tapFrame struct {
	kind      string
	dts       float64 // seconds
	key, disc bool
	at        time.Time
}

func tapStream(t *testing.T, g *gateway.Gateway, stream string) *streamTap {
	t.Helper()
	s, ok := g.Registry.Get(stream)
	if !ok {
		t.Fatal("stream not in the registry")
	}
	tp := &streamTap{done: make(chan struct{})}
	r := s.Subscribe("e2e-tap", 8192)
	go func() {
		defer close(tp.done)
		defer r.Close()
		for {
			f, err := r.Read(context.Background())
			if err != nil {
				return // the stream ended (or the tap fell behind: check says so)
			}
			tp.frames = append(tp.frames, tapFrame{f.Track.Kind.String(), f.Seconds(f.DTS), f.Keyframe, f.Discontinuity, time.Now()})
		}
	}()
	return tp
}

// check waits for the stream's end and asserts, per track: DTS strictly
// increasing across every resume, one Discontinuity per resume on the first
// frame after it (a keyframe for video), and the timeline advanced over each
// gap by about its wall-clock length.
func (tp *streamTap) check(t *testing.T, resumes int) {
	t.Helper()
	<-tp.done
	for _, kind := range []string{"video", "audio"} {
		var prev *tapFrame
		discs := 0
		for i := range tp.frames {
			f := &tp.frames[i]
			if f.kind != kind {
				continue
			}
			if prev != nil && f.dts <= prev.dts {
				t.Errorf("%s DTS %.3f s after %.3f s", kind, f.dts, prev.dts)
			}
			if f.disc {
				discs++
				if kind == "video" && !f.key {
					t.Errorf("video Discontinuity on a frame that is not a keyframe")
				}
				if prev != nil {
					media, wall := f.dts-prev.dts, f.at.Sub(prev.at).Seconds()
					t.Logf("%s resume: timeline +%.3f s over %.3f s of wall time", kind, media, wall)
					if media < wall-0.5 || media > wall+0.5 {
						t.Errorf("%s timeline advanced %.3f s over a %.3f s gap", kind, media, wall)
					}
				}
			}
			prev = f
		}
		if discs != resumes {
			t.Errorf("%s: %d frames with Discontinuity, want %d (one per resume)", kind, discs, resumes)
		}
	}
}

// checkInterrupted asserts that the API lists the stream as interrupted.
func checkInterrupted(t *testing.T, base, stream string) {
	t.Helper()
	code, body := get(t, base+"/v1/streams/"+stream)
	var si web.StreamInfo
	if code != 200 || json.Unmarshal([]byte(body), &si) != nil {
		t.Errorf("GET /v1/streams/%s during the interruption: %d %s", stream, code, body)
		return
	}
	if si.State != "interrupted" || si.Interrupted == nil {
		t.Errorf("stream state %q %+v, want interrupted", si.State, si.Interrupted)
	}
}

// videoPlaylistURL waits for the stream's multivariant playlist and returns
// the URL of its video media playlist.
func videoPlaylistURL(t *testing.T, base, stream string) string {
	t.Helper()
	var u string
	waitFor(t, 15*time.Second, "the video playlist", func() bool {
		code, mv := get(t, base+"/hls/"+stream+"/index.m3u8")
		if code != 200 {
			return false
		}
		for _, p := range mediaPlaylists(mv) {
			if strings.Contains(p, "video") {
				u = base + "/hls/" + stream + "/" + p
			}
		}
		if u == "" {
			return false
		}
		code, _ = get(t, u)
		return code == 200
	})
	return u
}

// TestE2EReconnectBrowserHLS plays the live playlist with hls.js in headless
// Chromium while the publisher leaves (DELETE) and comes back 3 s later
// within the reconnect window: hls.js never sees EXT-X-ENDLIST, reports no
// fatal error, and its currentTime keeps advancing after the gap.
func TestE2EReconnectBrowserHLS(t *testing.T) {
	node := needBrowser(t)
	checkNoLeaks(t)
	g := startGateway(t, fmt.Sprintf("  reconnect_window: %s\n", reconnectWindow))
	base := "http://" + g.HTTPAddr().String()
	const stream = "re/browser"
	ev := dialEvents(t, context.Background(), base)

	pub1 := publish(t, g, stream, whipclient.Options{MaxDuration: 10 * time.Second})
	ev.expect("stream.started")
	videoPlaylistURL(t, base, stream)

	const watchSeconds = 24
	type result struct {
		r   playResult
		err error
	}
	resc := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "play.mjs", "--player", "hls", "--url", base+"/hls/"+stream+"/index.m3u8",
			"--seconds", strconv.Itoa(watchSeconds), "--timeout", "30", "--chromium", chromiumPath)
		cmd.Dir = "browser"
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		var r playResult
		if err == nil {
			err = json.Unmarshal(out, &r)
		}
		resc <- result{r, err}
	}()

	if _, err := pub1.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := pub1.Close(); err != nil {
		t.Fatal(err)
	}
	ev.expect("stream.interrupted")
	time.Sleep(3 * time.Second) // the publisher's gap
	pub2 := publish(t, g, stream, whipclient.Options{Loop: 2, MaxDuration: 16 * time.Second})
	ev.expect("stream.resumed")
	resumed := time.Now()
	res := <-resc
	_ = pub2.Close()
	if res.err != nil {
		t.Fatalf("driver: %v", res.err)
	}
	r := res.r
	t.Logf("hls.js: playing=%v currentTime %.2f → %.2f s over %d s, endlist %v, %d samples", r.Playing, r.Start, r.End, watchSeconds, r.Endlist, len(r.Samples))
	if r.Error != nil {
		t.Errorf("hls.js: %s", *r.Error)
	}
	if !r.Playing {
		t.Fatal("hls.js did not play")
	}
	if r.Endlist {
		t.Error("hls.js saw EXT-X-ENDLIST during the reconnect window")
	}
	// After the resume (and a few seconds for the first new segment and the
	// player's buffer), currentTime must advance with the wall clock.
	from := float64(resumed.Add(4 * time.Second).UnixMilli())
	var first, last [2]float64
	for _, s := range r.Samples {
		if s[0] < from {
			continue
		}
		if first[0] == 0 {
			first = s
		}
		last = s
	}
	var trace []string
	for _, s := range r.Samples {
		trace = append(trace, fmt.Sprintf("%+.1f:%.2f", (s[0]-float64(resumed.UnixMilli()))/1000, s[1]))
	}
	t.Logf("samples (s from the resume: currentTime): %s", strings.Join(trace, " "))
	wall := (last[0] - first[0]) / 1000
	played := last[1] - first[1]
	t.Logf("after the resume: currentTime %.2f → %.2f s over %.1f s of wall time", first[1], last[1], wall)
	if wall < 3 {
		t.Fatalf("only %.1f s of samples after the resume; the watch ended too early", wall)
	}
	if played < wall/2 {
		t.Errorf("currentTime advanced %.2f s in %.1f s after the resume: playback did not go on", played, wall)
	}
}
