package e2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/whipcast/whipcast/internal/whipclient"
)

// mpd is what the tests read of an MPD: an independent decoding of the
// elements the packager writes.
type mpd struct {
	Type                  string `xml:"type,attr"`
	AvailabilityStartTime string `xml:"availabilityStartTime,attr"`
	PublishTime           string `xml:"publishTime,attr"`
	MinimumUpdatePeriod   string `xml:"minimumUpdatePeriod,attr"`
	TimeShiftBufferDepth  string `xml:"timeShiftBufferDepth,attr"`
	SuggestedDelay        string `xml:"suggestedPresentationDelay,attr"`
	Duration              string `xml:"mediaPresentationDuration,attr"`
	ServiceDescription    *struct {
		Latency struct {
			Target int `xml:"target,attr"`
		} `xml:"Latency"`
	} `xml:"ServiceDescription"`
	UTCTiming struct {
		Scheme string `xml:"schemeIdUri,attr"`
		Value  string `xml:"value,attr"`
	} `xml:"UTCTiming"`
	Periods []struct {
		ID             string `xml:"id,attr"`
		Start          string `xml:"start,attr"`
		Duration       string `xml:"duration,attr"`
		AdaptationSets []struct {
			ContentType string `xml:"contentType,attr"`
			Template    struct {
				Timescale  uint64  `xml:"timescale,attr"`
				PTO        uint64  `xml:"presentationTimeOffset,attr"`
				Init       string  `xml:"initialization,attr"`
				Media      string  `xml:"media,attr"`
				ATO        float64 `xml:"availabilityTimeOffset,attr"`
				ATComplete string  `xml:"availabilityTimeComplete,attr"`
				S          []struct {
					T *uint64 `xml:"t,attr"`
					D uint64  `xml:"d,attr"`
					R int     `xml:"r,attr"`
				} `xml:"SegmentTimeline>S"`
			} `xml:"SegmentTemplate"`
			Representations []struct {
				Codecs string `xml:"codecs,attr"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

// dashSeg is one segment the MPD lists.
type dashSeg struct {
	url  string
	t, d uint64
}

// segments expands the SegmentTimeline of adaptation set i of period p.
func (m *mpd) segments(p, i int) (init string, segs []dashSeg) {
	as := m.Periods[p].AdaptationSets[i]
	var t uint64
	for _, s := range as.Template.S {
		if s.T != nil {
			t = *s.T
		}
		for range s.R + 1 {
			segs = append(segs, dashSeg{strings.ReplaceAll(as.Template.Media, "$Time$", strconv.FormatUint(t, 10)), t, s.D})
			t += s.D
		}
	}
	return as.Template.Init, segs
}

func getMPD(t *testing.T, url string) (int, *mpd) {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		return code, nil
	}
	var m mpd
	if err := xml.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, body)
	}
	return code, &m
}

// fragmentTimes decodes b as CMAF fragments (moof + mdat) and returns the
// tfdt of each.
func fragmentTimes(b []byte) ([]uint64, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, seg := range f.Segments {
		for _, fr := range seg.Fragments {
			if fr.Moof == nil || fr.Moof.Traf == nil || fr.Moof.Traf.Tfdt == nil || fr.Mdat == nil {
				return nil, fmt.Errorf("fragment without moof/traf/tfdt/mdat")
			}
			out = append(out, fr.Moof.Traf.Tfdt.BaseMediaDecodeTime())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fragment in %d bytes", len(b))
	}
	return out, nil
}

// TestE2EPublishWHIPPlayDASH: 10 s of H.264 + Opus over WHIP in, low-latency
// DASH out (default config: video + AAC). While live, the MPD is dynamic and the segment in production
// comes chunked; after the end it is static, ffprobe reads it, and every
// segment it lists is a CMAF fragment whose tfdt is the timeline's @t.
func TestE2EPublishWHIPPlayDASH(t *testing.T) {
	checkNoLeaks(t)
	g := startGateway(t, "")
	base := "http://" + g.HTTPAddr().String()
	const stream = "e2e/dash1"
	mpdURL := base + "/dash/" + stream + "/manifest.mpd"
	dir := base + "/dash/" + stream + "/"

	if code, _ := get(t, mpdURL); code != http.StatusNotFound {
		t.Fatalf("MPD of an unpublished stream: %d, want 404", code)
	}
	if code, body := get(t, base+"/time"); code != 200 {
		t.Fatalf("/time: %d", code)
	} else if tm, err := time.Parse(time.RFC3339, body); err != nil || time.Since(tm).Abs() > time.Minute {
		t.Fatalf("/time says %q (%v)", body, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio,
		whipclient.Options{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	// Live: wait for a dynamic MPD with both tracks.
	var live *mpd
	waitFor(t, 15*time.Second, "a live MPD with video and audio", func() bool {
		code, m := getMPD(t, mpdURL)
		if code == http.StatusOK && len(m.Periods) == 1 && len(m.Periods[0].AdaptationSets) == 2 {
			live = m
			return true
		}
		return false
	})
	if live.Type != "dynamic" || live.AvailabilityStartTime == "" || live.PublishTime == "" ||
		live.MinimumUpdatePeriod == "" || live.TimeShiftBufferDepth == "" || live.SuggestedDelay == "" {
		t.Errorf("live MPD attributes: %+v", live)
	}
	if live.ServiceDescription == nil || live.ServiceDescription.Latency.Target <= 0 {
		t.Error("live MPD has no ServiceDescription latency target")
	}
	if live.UTCTiming.Value != base+"/time" {
		t.Errorf("UTCTiming %q, want %q", live.UTCTiming.Value, base+"/time")
	}
	codecs := map[string]string{}
	for i, as := range live.Periods[0].AdaptationSets {
		codecs[as.ContentType] = as.Representations[0].Codecs
		if as.Template.ATComplete != "false" || as.Template.ATO <= 0 {
			t.Errorf("%s: availabilityTimeOffset %v, availabilityTimeComplete %q", as.ContentType, as.Template.ATO, as.Template.ATComplete)
		}
		// The last S is the segment in production: it comes chunked, its
		// first chunk well before the whole segment. It is announced once
		// it has its first chunk, so the first MPD (served at the first
		// complete segment) may not list it yet.
		var segs []dashSeg
		waitFor(t, 5*time.Second, "an MPD announcing the segment in production", func() bool {
			_, fresh := getMPD(t, mpdURL)
			if fresh == nil || fresh.Type != "dynamic" {
				t.Fatal("the MPD went away while live")
			}
			_, segs = fresh.segments(0, i)
			return len(segs) >= 2
		})
		last := segs[len(segs)-1]
		start := time.Now()
		res, err := http.Get(dir + last.url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		took := time.Since(start)
		if res.StatusCode != 200 || err != nil {
			t.Fatalf("%s in production: %d %v", last.url, res.StatusCode, err)
		}
		if res.ContentLength != -1 || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
			t.Errorf("%s in production: length %d, transfer encoding %v: want chunked", last.url, res.ContentLength, res.TransferEncoding)
		}
		times, err := fragmentTimes(b)
		if err != nil {
			t.Fatalf("%s: %v", last.url, err)
		}
		if times[0] != last.t || len(times) < 2 {
			t.Errorf("%s: tfdt %v, want %d first and several chunks", last.url, times, last.t)
		}
		t.Logf("%s segment in production: %d chunks, %d bytes, streamed over %v", as.ContentType, len(times), len(b), took.Round(time.Millisecond))
	}
	if !strings.HasPrefix(codecs["video"], "avc1.") || len(codecs["video"]) != len("avc1.42c01f") || codecs["audio"] != codecsString[defaultAudio()] {
		t.Errorf("codecs %v, want avc1.xxxxxx and %s", codecs, codecsString[defaultAudio()])
	}

	if _, err := pub.Wait(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("WHIP DELETE: %v", err)
	}

	// After the end: static, with the whole publish (7 × 2 s window > 10 s).
	var end *mpd
	waitFor(t, 5*time.Second, "a static MPD", func() bool {
		_, m := getMPD(t, mpdURL)
		end = m
		return m != nil && m.Type == "static"
	})
	dur, err := parseISODuration(end.Duration)
	if err != nil || math.Abs(dur-fixtureSeconds) > 1 {
		t.Errorf("mediaPresentationDuration %q, want %.0f ± 1 s", end.Duration, fixtureSeconds)
	}
	for i, as := range end.Periods[0].AdaptationSets {
		init, segs := end.segments(0, i)
		if code, body := get(t, dir+init); code != 200 {
			t.Fatalf("%s: %d", init, code)
		} else if f, err := mp4.DecodeFile(strings.NewReader(body)); err != nil || f.Init == nil {
			t.Fatalf("%s: not an init segment: %v", init, err)
		}
		var total uint64
		for _, s := range segs {
			code, body := get(t, dir+s.url)
			if code != 200 {
				t.Fatalf("%s: %d", s.url, code)
			}
			times, err := fragmentTimes([]byte(body))
			if err != nil {
				t.Fatalf("%s: %v", s.url, err)
			}
			if times[0] != s.t {
				t.Errorf("%s: tfdt %d, SegmentTimeline @t %d", s.url, times[0], s.t)
			}
			total += s.d
		}
		t.Logf("%s: %d segments, %.3f s, all tfdt = @t", as.ContentType, len(segs), float64(total)/float64(as.Template.Timescale))
		// Between two segments, or past the window (never made): 404, not a
		// panic. (A first segment may start at any tick, even 1.)
		for _, bad := range []string{
			strings.ReplaceAll(as.Template.Media, "$Time$", strconv.FormatUint(segs[0].t+1, 10)),
			strings.ReplaceAll(as.Template.Media, "$Time$", strconv.FormatUint(segs[len(segs)-1].t+segs[len(segs)-1].d, 10)),
		} {
			if code, _ := get(t, dir+bad); code != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", bad, code)
			}
		}
	}

	// ffprobe on the MPD's URL.
	p := runProbe(t, mpdURL, false)
	vcodec, _, _, vok := p.stream("video")
	acodec, _, _, aok := p.stream("audio")
	if !vok || !aok || vcodec != "h264" || acodec != defaultAudio() {
		t.Fatalf("ffprobe codecs: video %q audio %q, want h264 and %s", vcodec, acodec, defaultAudio())
	}
	if d := p.duration(); math.Abs(d-fixtureSeconds) > 1 {
		t.Errorf("ffprobe duration %.3f s, want %.1f ± 1 s", d, fixtureSeconds)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", mpdURL, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decode of the DASH output: %v\n%s", err, out)
	}
	t.Logf("ffprobe: %s + %s, duration %s s", vcodec, acodec, p.Format.Duration)
}

// parseISODuration parses the "PT12.345S" form the packager writes.
func parseISODuration(s string) (float64, error) {
	v, ok := strings.CutPrefix(s, "PT")
	if v, ok2 := strings.CutSuffix(v, "S"); ok && ok2 {
		return strconv.ParseFloat(v, 64)
	}
	return 0, fmt.Errorf("duration %q", s)
}
