package packager

import (
	"encoding/xml"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// withoutAudioBefore drops the fixture's audio frames before sec: a late
// player's packaging, where the audio transcode starts after the video it
// goes with (which comes from the last keyframe).
func (x *dashHarness) withoutAudioBefore(sec float64) {
	var out []*media.Frame
	for _, f := range x.fx.Frames {
		if f.Track.Kind == media.KindAudio && f.Seconds(f.DTS) < sec {
			continue
		}
		out = append(out, f)
	}
	x.fx.Frames = out
}

// TestDASHLateAudioFirstPeriod: a new SPS at 2 s cuts a Period before the
// audio's first frame (2.5 s), so the first Period has no audio at all.
// dash.js makes its SourceBuffers from the first Period it plays and cannot
// add the audio one at the next (it stalled for good in the e2e test of a
// late player): the first MPD waits for a Period with both tracks, and no
// MPD ever shows a Period without audio first.
func TestDASHLateAudioFirstPeriod(t *testing.T) {
	for _, ll := range []bool{true, false} {
		t.Run(map[bool]string{true: "low-latency", false: "segments"}[ll], func(t *testing.T) {
			x := newDASHHarness(t, DASHSettings{Window: 10, DisableLowLatency: !ll, StartTimeout: time.Minute})
			x.withChanges([]float64{2}, nil)
			x.withoutAudioBefore(2.5)
			x.until(2.2) // Period 0 has its video segment, Period 1 has begun

			first := make(chan mpdXML, 1)
			go func() {
				resp, body := x.get(t, "live/cam/manifest.mpd")
				var m mpdXML
				if resp.StatusCode != 200 || xml.Unmarshal([]byte(body), &m) != nil {
					t.Errorf("first MPD: %d %s", resp.StatusCode, body)
				}
				first <- m
			}()
			select {
			case m := <-first:
				t.Fatalf("the first MPD came before any audio: %d Periods", len(m.Periods))
			case <-time.After(300 * time.Millisecond):
			}
			x.until(4.5) // audio from 2.5 s, Period 1's first segment complete at 4 s
			m := <-first
			check := func(at float64, m mpdXML) {
				t.Helper()
				if len(m.Periods) == 0 {
					t.Fatalf("at %.1f s: no Period", at)
				}
				if p := m.Periods[0]; len(p.AdaptationSets) != 2 {
					t.Fatalf("at %.1f s: the first Period %s has %d AdaptationSets, want video and audio", at, p.ID, len(p.AdaptationSets))
				}
			}
			check(4.5, m)
			if got := m.Periods[0].ID; got != "1-1" {
				t.Errorf("first Period %s, want 1-1 (the one after the audio-less one)", got)
			}
			for at := 4.6; at < 9; at += 0.3 {
				x.until(at)
				_, m := x.mpd(t)
				check(at, m)
			}
			x.until(1e9)
			x.tm.End(nil)
			_, m = x.mpd(t)
			check(1e9, m)
		})
	}
}

// TestDASHTrackThatNeverComes: a stream whose audio never arrives (a failed
// transcode) holds its first MPD back for StartTimeout only, then plays
// without it.
func TestDASHTrackThatNeverComes(t *testing.T) {
	x := newDASHHarness(t, DASHSettings{Window: 10, StartTimeout: 200 * time.Millisecond})
	x.withoutAudioBefore(1e9)
	x.until(4.5)
	_, m := x.mpd(t)
	if len(m.Periods) != 1 || len(m.Periods[0].AdaptationSets) != 1 || m.Periods[0].AdaptationSets[0].ContentType != "video" {
		t.Fatalf("MPD of a stream without audio: %+v", m.Periods)
	}
}

// TestDASHWindowLateAudio: the origin's MPD (DASHWindow) is not written
// before a Period has every track, unless the missing one has not come for
// windowTrackWait segments.
func TestDASHWindowLateAudio(t *testing.T) {
	fx := loadFixture(t)
	for _, tc := range []struct {
		name     string
		audioAt  float64
		until    float64
		want     bool
		wantSets int
	}{
		{"audio late", 2.5, 3.9, false, 0},
		{"audio came", 2.5, 6.1, true, 2},
		{"audio never", 1e9, 5.9, false, 0},
		{"audio never, waited", 1e9, 8.1, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &media.Stream{Name: "live/cam", Tracks: fx.Tracks()}
			set := transmux.Settings{}.WithDefaults()
			w := NewDASHWindow(s, "e1", 10, set)
			tm, err := transmux.New(set, fx.Tracks(), w)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fx.Frames {
				sec := f.Seconds(f.DTS)
				if sec >= tc.until {
					break
				}
				if f.Track.Kind == media.KindAudio && sec < tc.audioAt {
					continue
				}
				_ = tm.WriteFrame(f)
			}
			b := w.MPD()
			if (b != nil) != tc.want {
				t.Fatalf("MPD written: %v, want %v", b != nil, tc.want)
			}
			if b == nil {
				return
			}
			var m mpdXML
			if err := xml.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if got := len(m.Periods[0].AdaptationSets); got != tc.wantSets {
				t.Errorf("first Period has %d AdaptationSets, want %d", got, tc.wantSets)
			}
		})
	}
}
