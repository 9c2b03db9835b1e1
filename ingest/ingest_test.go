package ingest

import (
	"context"
	"errors"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/media"
)

type gotFrame struct {
	f       *media.Frame
	arrived time.Time
}

// TestE2EPublish publishes the fixture through the WHIP handler with a real
// pion client and checks the frames a reader gets.
func TestE2EPublish(t *testing.T) {
	checkNoLeaks(t)
	env := newTestEnv(t, Config{}, nil)

	frames := make(chan []gotFrame, 1)
	env.reg.OnPublish(func(s *media.Stream) {
		r := s.Subscribe("test", 0)
		go func() {
			var got []gotFrame
			for {
				f, err := r.Read(context.Background())
				if err != nil {
					if !errors.Is(err, media.ErrStreamEnded) {
						t.Errorf("read: %v", err)
					}
					frames <- got
					return
				}
				got = append(got, gotFrame{f, time.Now()})
			}
		}()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := whipclient.Publish(ctx, env.url("live/cam1"), "", "../testdata/av.h264", "../testdata/av.ogg",
		whipclient.Options{LoopbackOnly: true, MaxDuration: 3500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := c.Wait()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the last packets arrive
	// pion's client sends an SR about every second: both tracks must have
	// moved from arrival time to SR mapping by now.
	for _, id := range env.srv.sessionIDs() {
		sess, _ := env.srv.Session(id)
		for i := range 2 {
			if !sess.tl.hasSR(i) {
				t.Errorf("track %d: no RTCP SR used", i)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var got []gotFrame
	select {
	case got = <-frames:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after DELETE")
	}
	env.waitEmpty(t)

	var video, audio []*media.Frame
	for _, g := range got {
		switch g.f.Track.Kind {
		case media.KindVideo:
			video = append(video, g.f)
		case media.KindAudio:
			audio = append(audio, g.f)
		}
	}
	t.Logf("sent %d video frames, %d audio packets; got %d video, %d audio; %d PLIs", stats.VideoFrames, stats.AudioPackets, len(video), len(audio), stats.PLIs)
	// PLIs: at the publish start and for the new reader (rate-limited to one
	// per 500 ms, so they may merge), then every ~KeyframeInterval.
	if stats.PLIs < 1 || stats.PLIs > 3500/500+1 {
		t.Errorf("%d PLIs in 3.5 s", stats.PLIs)
	}
	if len(video) == 0 || len(audio) == 0 {
		t.Fatalf("got %d video and %d audio frames", len(video), len(audio))
	}
	v0 := video[0]
	if !v0.Keyframe || v0.Config == nil {
		t.Fatalf("first video frame: keyframe=%v config=%v", v0.Keyframe, v0.Config)
	}
	if v0.Config.Width != 320 || v0.Config.Height != 240 || len(v0.Config.SPS) == 0 || len(v0.Config.PPS) == 0 {
		t.Errorf("config %dx%d sps %d pps %d", v0.Config.Width, v0.Config.Height, len(v0.Config.SPS), len(v0.Config.PPS))
	}
	keyframes := 0
	for i, f := range video {
		if f.Config != v0.Config {
			t.Errorf("frame %d: Config pointer changed though SPS/PPS did not", i)
			break
		}
		if f.Keyframe {
			keyframes++
		}
		checkAVCC(t, f.Data)
	}
	if keyframes < 2 {
		t.Errorf("%d keyframes in %d frames (2 s GOP, ~3.5 s)", keyframes, len(video))
	}
	for _, fs := range [][]*media.Frame{video, audio} {
		for i := 1; i < len(fs); i++ {
			if fs[i].DTS <= fs[i-1].DTS {
				t.Fatalf("%s DTS not monotonic at %d: %d then %d", fs[i].Track.Kind, i, fs[i-1].DTS, fs[i].DTS)
			}
		}
	}
	if d := stats.VideoFrames - len(video); d < 0 || d > 3 {
		t.Errorf("video: sent %d, got %d", stats.VideoFrames, len(video))
	}
	if d := stats.AudioPackets - len(audio); d < 0 || d > 5 {
		t.Errorf("audio: sent %d, got %d", stats.AudioPackets, len(audio))
	}
	// Sync against the send schedule: video frame i left at Start+i/30 s,
	// audio packet j at Start+j*20 ms. On a lossless loopback, DTS minus the
	// scheduled time is the same constant for both tracks when in sync.
	offV := medianOffset(video, func(i int) float64 { return float64(i) / 30 })
	offA := medianOffset(audio, func(i int) float64 { return float64(i) * 0.020 })
	t.Logf("timeline offset: video %.3f s, audio %.3f s", offV, offA)
	if math.Abs(offV-offA) > 0.1 {
		t.Errorf("A/V out of sync by %.0f ms", (offV-offA)*1000)
	}
	if offV < -0.05 || offV > 0.5 || offA < -0.05 || offA > 0.5 {
		t.Errorf("DTS does not start near 0: video %.3f s, audio %.3f s", offV, offA)
	}
	// Every frame, not just the median, stays within the bound (jitter and
	// SR re-anchoring included).
	for i, f := range video {
		if d := f.Seconds(f.DTS) - float64(i)/30 - offA; math.Abs(d) > 0.1 {
			t.Errorf("video frame %d off the audio timeline by %.0f ms", i, d*1000)
			break
		}
	}
	if !v0.Time.After(stats.Start.Add(-time.Second)) || v0.Time.After(time.Now()) {
		t.Errorf("first video frame wall time %v, publish started %v", v0.Time, stats.Start)
	}
}

func medianOffset(fs []*media.Frame, sched func(i int) float64) float64 {
	d := make([]float64, len(fs))
	for i, f := range fs {
		d[i] = f.Seconds(f.DTS) - sched(i)
	}
	sort.Float64s(d)
	return d[len(d)/2]
}

func checkAVCC(t *testing.T, b []byte) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("AVCC: short length prefix")
		}
		n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if n == 0 || n > len(b)-4 {
			t.Fatalf("AVCC: bad length %d of %d", n, len(b)-4)
		}
		switch typ := b[4] & 0x1f; typ {
		case 7, 8, 9:
			t.Fatalf("AVCC payload contains NAL type %d", typ)
		}
		b = b[4+n:]
	}
}
