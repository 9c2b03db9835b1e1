package bench

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// partsPerSeg is the fake LL-HLS server's parts per segment.
const partsPerSeg = 4

// fakeMedia renders a live LL-HLS media playlist whose newest part is
// (msn, part): complete segments before msn (the last three listed, the
// last two with their parts), then parts 0..part of segment msn; with end,
// segment msn is complete too and the playlist has ended.
func fakeMedia(msn, part int, end bool) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n")
	b.WriteString("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5\n#EXT-X-PART-INF:PART-TARGET=0.5\n")
	last := msn - 1
	if end {
		last = msn
	}
	first := max(1, last-2)
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-MAP:URI=\"init.mp4\"\n", first)
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", base.Add(time.Duration(first-1)*2*time.Second).Format(time.RFC3339Nano))
	for s := first; s <= last; s++ {
		if s >= last-1 {
			for p := range partsPerSeg {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.5,URI=\"s%d_p%d.m4s\"\n", s, p)
			}
		}
		fmt.Fprintf(&b, "#EXTINF:2.0,\ns%d.m4s\n", s)
	}
	if end {
		b.WriteString("#EXT-X-ENDLIST\n")
		return b.String()
	}
	for p := 0; p <= part; p++ {
		fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.5,URI=\"s%d_p%d.m4s\"\n", msn, p)
	}
	fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s%d_p%d.m4s\"\n", msn, part+1)
	return b.String()
}

// fakeHLS serves a multivariant playlist (404 for the first two requests,
// as before a publish), a media playlist that answers blocking reloads
// from (3, 1) up to the end of segment 5, and any .mp4/.m4s.
type fakeHLS struct {
	mu       sync.Mutex
	misses   int
	media    []string // segment and part requests, in order
	init     int
	blocking int
}

func (f *fakeHLS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch name := strings.TrimPrefix(r.URL.Path, "/s/"); {
	case name == "index.m3u8":
		if f.misses < 2 {
			f.misses++
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\",URI=\"audio.m3u8\"\n"+
			"#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS=\"avc1.42c01f,opus\",AUDIO=\"a\"\nvideo.m3u8\n")
	case name == "video.m3u8":
		msn, part := 3, 1
		if v := r.URL.Query().Get("_HLS_msn"); v != "" {
			f.blocking++
			msn, _ = strconv.Atoi(v)
			part, _ = strconv.Atoi(r.URL.Query().Get("_HLS_part"))
			if part >= partsPerSeg {
				msn, part = msn+1, 0
			}
		}
		if msn > 5 {
			fmt.Fprint(w, fakeMedia(5, 0, true))
			return
		}
		fmt.Fprint(w, fakeMedia(msn, part, false))
	case name == "init.mp4":
		f.init++
		fmt.Fprint(w, "init")
	case strings.HasSuffix(name, ".m4s"):
		f.media = append(f.media, strings.TrimSuffix(name, ".m4s"))
		fmt.Fprint(w, "media")
	default:
		http.NotFound(w, r)
	}
}

func TestHLSReaderBlockingReload(t *testing.T) {
	f := &fakeHLS{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	post := time.Now()
	res := newHLSReader(srv.Client(), srv.URL+"/s/index.m3u8", post).run(ctx)
	if ctx.Err() != nil {
		t.Fatal("the reader did not stop at EXT-X-ENDLIST")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// From the live edge (segment 3, in production) on: every part once,
	// in order, no whole segment (they are fetched as parts).
	var want []string
	for s := 3; s <= 5; s++ {
		for p := range partsPerSeg {
			want = append(want, fmt.Sprintf("s%d_p%d", s, p))
		}
	}
	if !slices.Equal(f.media, want) {
		t.Fatalf("fetched %q\nwant    %q", f.media, want)
	}
	if f.init != 1 || res.Fetches != len(want) || res.Bytes != int64(5*len(want)) || res.Errors != 0 {
		t.Fatalf("init %d, result %+v", f.init, res)
	}
	if res.First <= 0 || res.First > time.Since(post) {
		t.Fatalf("first segment at %v", res.First)
	}
	// One packaging-delay sample per playlist load: the first, then each
	// blocking reload.
	if len(res.Delays) != f.blocking+1 || f.blocking < 10 {
		t.Fatalf("%d delays, %d blocking reloads", len(res.Delays), f.blocking)
	}
}

func parseMedia(t *testing.T, s string) *playlist.Media {
	t.Helper()
	var m playlist.Media
	if err := m.Unmarshal([]byte(s)); err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	return &m
}

func TestHLSPlaylistLogic(t *testing.T) {
	m := parseMedia(t, fakeMedia(4, 2, false))
	if lp := livePos(m); lp != (pos{3, wholeSeg}) {
		t.Fatalf("live position %v", lp)
	}
	if msn, part, ok := nextBlock(m); msn != 4 || part != 3 || !ok {
		t.Fatalf("next block %d %d %v", msn, part, ok)
	}
	// Segments 2 and 3 complete (PDT of segment 2: 12:00:02), 3 parts of 4:
	// the newest media ends at 12:00:02 + 4 s + 1.5 s.
	end, ok := newestEnd(m)
	if want := time.Date(2026, 11, 24, 12, 0, 7, 500e6, time.UTC); !ok || !end.Equal(want) {
		t.Fatalf("newest end %v, want %v", end, want)
	}
	// Half way through segment 3's parts: the rest of segment 3, then 4's.
	var got []string
	for _, it := range toFetch(m, pos{3, 1}) {
		got = append(got, it.uri)
	}
	if want := []string{"s3_p2.m4s", "s3_p3.m4s", "s4_p0.m4s", "s4_p1.m4s", "s4_p2.m4s"}; !slices.Equal(got, want) {
		t.Fatalf("to fetch %q, want %q", got, want)
	}
	if got := blockingURL("http://h/v.m3u8?token=x", 4, 3, true); got != "http://h/v.m3u8?token=x&_HLS_msn=4&_HLS_part=3" {
		t.Fatalf("blocking URL %q", got)
	}

	// A plain playlist (no parts, no blocking): whole segments, the newest
	// first, then each new one.
	plain := "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n" +
		"#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXTINF:2,\nc.ts\n"
	m = parseMedia(t, plain)
	if _, ok := newestEnd(m); ok {
		t.Fatal("no PROGRAM-DATE-TIME, no packaging delay")
	}
	if its := toFetch(m, livePos(m)); len(its) != 1 || its[0].uri != "c.ts" {
		t.Fatalf("live edge of a plain playlist: %+v", its)
	}
	if its := toFetch(m, pos{7, wholeSeg}); len(its) != 2 || its[0].uri != "b.ts" {
		t.Fatalf("after segment 7: %+v", its)
	}
	if _, _, ok := nextBlock(m); ok {
		t.Fatal("no PART-INF, no _HLS_part")
	}
}

// fakeMPD is the packager's DASH manifest shape with a timeline of r+1
// video segments of 2 s from t=180000.
func fakeMPD(r int) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2026-11-24T12:00:00.000Z" minimumUpdatePeriod="PT0.2S">
 <Period id="1-0" start="PT0S">
  <AdaptationSet id="0" contentType="video" mimeType="video/mp4">
   <SegmentTemplate timescale="90000" presentationTimeOffset="0" initialization="video_1_init0.mp4" media="video_$RepresentationID$_t$Time$.m4s">
    <SegmentTimeline><S t="180000" d="180000" r="%d"></S></SegmentTimeline>
   </SegmentTemplate>
   <Representation id="v" bandwidth="282104" codecs="avc1.42c01f"></Representation>
  </AdaptationSet>
  <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4">
   <SegmentTemplate timescale="48000" initialization="audio_init.mp4" media="audio_$Time$.m4s">
    <SegmentTimeline><S t="96000" d="96000" r="3"></S></SegmentTimeline>
   </SegmentTemplate>
   <Representation id="a"></Representation>
  </AdaptationSet>
 </Period>
</MPD>`, r)
}

func TestDASHNewestSegment(t *testing.T) {
	for _, tc := range []struct {
		mpd  string
		want dashSegment
	}{
		// t = 180000 + 3×180000 = 720000, ends at 900000/90000 = 10 s.
		{fakeMPD(3), dashSegment{"video_1_init0.mp4", "video_v_t720000.m4s", time.Date(2026, 11, 24, 12, 0, 10, 0, time.UTC),
			time.Date(2026, 11, 24, 12, 0, 8, 0, time.UTC)}},
		// $Number$ from startNumber, explicit t on a second S, a Period start.
		{`<MPD availabilityStartTime="2026-11-24T12:00:00Z"><Period start="PT1M"><AdaptationSet mimeType="video/mp4">
<SegmentTemplate timescale="1000" startNumber="5" initialization="i.mp4" media="n$Number$.m4s">
<SegmentTimeline><S t="0" d="2000" r="1"/><S t="5000" d="1000"/></SegmentTimeline></SegmentTemplate>
<Representation id="v"/></AdaptationSet></Period></MPD>`,
			dashSegment{"i.mp4", "n7.m4s", time.Date(2026, 11, 24, 12, 1, 6, 0, time.UTC), time.Date(2026, 11, 24, 12, 1, 5, 0, time.UTC)}},
	} {
		m := parseMPD(t, tc.mpd)
		got, err := newestVideo(m)
		if err != nil {
			t.Fatal(err)
		}
		if got.init != tc.want.init || got.media != tc.want.media || !got.end.Equal(tc.want.end) || !got.prevEnd.Equal(tc.want.prevEnd) {
			t.Errorf("newest %+v, want %+v", got, tc.want)
		}
	}
	if _, err := newestVideo(parseMPD(t, `<MPD><Period><AdaptationSet contentType="audio"/></Period></MPD>`)); err == nil {
		t.Error("an MPD without video has no newest video segment")
	}
	for s, want := range map[string]time.Duration{"PT0.5S": 500 * time.Millisecond, "PT1M2.5S": 62500 * time.Millisecond,
		"PT2H": 2 * time.Hour, "P1DT1S": 24*time.Hour + time.Second} {
		if got, err := parseISODuration(s); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "5S", "PT5", "PTxS", "PT1D"} {
		if _, err := parseISODuration(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

func TestDASHReader(t *testing.T) {
	var mu sync.Mutex
	polls := 0
	var fetched []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/d/manifest.mpd" {
			polls++
			switch {
			case polls == 1:
				http.NotFound(w, r) // not published yet
			case polls <= 3:
				fmt.Fprint(w, fakeMPD(3))
			default:
				fmt.Fprint(w, fakeMPD(4))
			}
			return
		}
		fetched = append(fetched, strings.TrimPrefix(r.URL.Path, "/d/"))
		fmt.Fprint(w, "x")
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan readerResult)
	go func() { done <- newDASHReader(srv.Client(), srv.URL+"/d/manifest.mpd", time.Now()).run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		p := polls
		mu.Unlock()
		if p >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	res := <-done
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"video_1_init0.mp4", "video_v_t720000.m4s", "video_v_t900000.m4s"}; !slices.Equal(fetched, want) {
		t.Fatalf("fetched %q, want %q (polls %d)", fetched, want, polls)
	}
	if res.Fetches != 2 || res.Errors != 0 || res.First <= 0 || len(res.Delays) < 4 {
		t.Fatalf("result %+v", res)
	}
}

func parseMPD(t *testing.T, s string) *mpd {
	t.Helper()
	var m mpd
	if err := xml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return &m
}
