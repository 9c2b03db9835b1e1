//go:build !nocodec

package composite

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages"
	"github.com/whipcast/whipcast/stages/codec"
)

// clip is pre-encoded media a replay source sends in a loop, so a benchmark
// measures the composite, not the sources' encoders.
type clip struct {
	video []codec.VideoPacket // one loop, starting with an IDR
	fps   int
	audio [][]byte // 20 ms Opus packets
}

// makeClip encodes n frames of a w×h moving pattern (a gradient with a bar
// that sweeps across, so every frame has motion to code) and a second of a
// 500 Hz tone.
func makeClip(tb testing.TB, w, h, n, fps, bitrate int) *clip {
	tb.Helper()
	enc, err := codec.NewVideoEncoder(codec.VideoSettings{Bitrate: bitrate, KeyframeInterval: int64(n) * codec.VideoClockRate / int64(fps)}, w, h, fps)
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	c := &clip{fps: fps}
	p := codec.NewPicture(w, h)
	for i := 0; i < n; i++ {
		bar := i * w / n
		for y := 0; y < h; y++ {
			row := p.Y[y*w : (y+1)*w]
			for x := range row {
				v := 16 + (x+y+4*i)%200
				if x >= bar && x < bar+w/10 {
					v = 235
				}
				row[x] = byte(v)
			}
		}
		p.PTS = int64(i) * codec.VideoClockRate / int64(fps)
		pkts, err := enc.Encode(p)
		if err != nil {
			tb.Fatal(err)
		}
		c.video = append(c.video, pkts...)
	}
	pkts, _ := enc.Flush()
	c.video = append(c.video, pkts...)
	if !c.video[0].Keyframe {
		tb.Fatal("clip does not start with an IDR")
	}
	aenc, err := codec.NewOpusEncoder(0)
	if err != nil {
		tb.Fatal(err)
	}
	defer aenc.Close()
	pcm := make([]float32, 2*960)
	for k := 0; k < 50; k++ {
		for i := 0; i < 960; i++ {
			v := float32(0.3 * math.Sin(2*math.Pi*500*float64(k*960+i)/48000))
			pcm[2*i], pcm[2*i+1] = v, v
		}
		out, _ := aenc.Encode(pcm, int64(k*960))
		for _, o := range out {
			c.audio = append(c.audio, o.Data)
		}
	}
	return c
}

// replay publishes name on reg and sends the clip in a loop in real time
// until ctx ends; it returns when the stream is unpublished.
func replay(ctx context.Context, tb testing.TB, reg *media.Registry, name string, c *clip) (*media.Stream, <-chan struct{}) {
	tb.Helper()
	tracks := []*media.Track{
		{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000},
		{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2},
	}
	s, err := reg.Publish(name, tracks, nil)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer reg.Unpublish(s)
		vout := &stages.H264Out{Out: s, Track: s.Tracks[0]}
		start := time.Now()
		var vn, an int64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				el := now.Sub(start)
				for ; time.Duration(vn)*time.Second/time.Duration(c.fps) <= el; vn++ {
					p := c.video[vn%int64(len(c.video))]
					p.PTS = vn * codec.VideoClockRate / int64(c.fps)
					p.DTS = p.PTS
					_ = vout.Write(p, start.Add(time.Duration(vn)*time.Second/time.Duration(c.fps)))
				}
				for ; time.Duration(an)*20*time.Millisecond <= el; an++ {
					ts := an * 960
					s.Write(&media.Frame{Track: s.Tracks[1], DTS: ts, PTS: ts, Keyframe: true,
						Data: c.audio[an%int64(len(c.audio))], Time: start.Add(time.Duration(an) * 20 * time.Millisecond)})
				}
			}
		}
	}()
	return s, done
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkComposite4x720p30 runs a real-time composite of four 1280x720
// 30 fps participants (1.5 Mbit/s each, moving picture, tone) into 1280x720
// at 30 fps and reports the process's CPU use in cores (one op is one
// second of real time) and the output frame rate it kept. Run:
//
//	go test -run '^$' -bench Composite4x720p30 -benchtime 10x ./stages/composite/
func BenchmarkComposite4x720p30(b *testing.B) {
	benchComposite(b, 4, 1280, 720, Settings{Width: 1280, Height: 720, FPS: 30})
}

// BenchmarkComposite4x360p30 is the same with 640x360 participants (what a
// browser sends on a modest uplink) into 1280x720.
func BenchmarkComposite4x360p30(b *testing.B) {
	benchComposite(b, 4, 640, 360, Settings{Width: 1280, Height: 720, FPS: 30})
}

func benchComposite(b *testing.B, n, w, h int, s Settings) {
	c := makeClip(b, w, h, 60, 30, 1500000)
	reg := media.NewRegistry()
	defer reg.Close()
	m := NewManager(reg, 1, nil)
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var parts []*media.Stream
	var dones []<-chan struct{}
	for i := 0; i < n; i++ {
		st, done := replay(ctx, b, reg, fmt.Sprintf("bench/p%d", i), c)
		parts = append(parts, st)
		dones = append(dones, done)
	}
	defer func() {
		cancel()
		for _, d := range dones {
			<-d
		}
	}()
	if _, err := m.Start("bench", s, parts); err != nil {
		b.Fatal(err)
	}
	out, _ := reg.Get("bench/" + Name)
	r := out.Subscribe("bench", 1024)
	defer r.Close()
	frames := make(chan int, 1)
	go func() {
		count := 0
		for {
			f, err := r.Read(context.Background())
			if err != nil {
				frames <- count
				return
			}
			if f.Track.Kind == media.KindVideo {
				count++
			}
		}
	}()
	time.Sleep(2 * time.Second) // decoders and encoder warm up
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Second)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.StopTimer()
	runtime.GC()
	_ = m.Stop("bench")
	got := <-frames
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
	b.ReportMetric(float64(got)/(wall.Seconds()+2), "out-fps")
}
