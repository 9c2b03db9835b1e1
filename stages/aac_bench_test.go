//go:build !nocodec

package stages

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// BenchmarkAACStage is the Opus→AAC stage as the gateway runs it: a
// media.Stream with the fixture's real H.264 frames (testdata/av.h264,
// 320x240 30 fps) and real Opus (stereo testdata/av.ogg, or mono
// testdata/av-mono.ogg as browsers send it; and, as a pure tone is the AAC
// encoder's cheapest case on some encoders and its dearest on FFmpeg's, a
// stereo synthetic music clip testdata/music.ogg and mono speech
// testdata/speech-mono.ogg), the running stage, and a reader
// of the derived stream, as transmux would be. One op is the fixture's 10 s
// of media, timestamps moved on each time.
//
// cores/stream is CPU seconds of the whole process (getrusage: the stage,
// the hub, the reader and this loop) per second of media: what the stage
// costs a gateway per stream in real time. It is measured unpaced, so the
// goroutine wake-ups per frame of a live stream (~80/s, a few µs each) are
// under-counted; ns/op is wall time and means little on a shared machine.
// BenchmarkAACStagePaced (aac_paced_bench_test.go) feeds streams at real time.
func BenchmarkAACStage(b *testing.B) {
	for _, src := range []struct{ name, ogg string }{
		{"stereo", "av.ogg"}, {"mono", "av-mono.ogg"}, {"music-stereo", "music.ogg"}, {"speech-mono", "speech-mono.ogg"},
	} {
		b.Run(src.name, func(b *testing.B) {
			fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/"+src.ogg, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			const span = 10 // seconds of media in the fixture
			in := media.NewStream("bench", fx.Tracks(), nil)
			a := NewAAC(codec.AACSettings{}, nil)
			d, release, err := a.Acquire(in)
			if err != nil {
				b.Fatal(err)
			}
			defer release()
			rd := d.Subscribe("bench", 0)
			// credit bounds how far the writer runs ahead of the reader, in
			// video frames, so no queue overflows; the reader gives one back
			// per video frame it reads.
			credit := make(chan struct{}, 60)
			done := make(chan int)
			go func() {
				aac := 0
				defer func() { done <- aac }()
				for {
					f, err := rd.Read(context.Background())
					if err != nil {
						return
					}
					if f.Track.Kind == media.KindVideo {
						<-credit
					} else if f.Track.Codec == media.CodecAAC {
						aac++
					}
				}
			}()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				for _, f := range fx.Frames {
					c := *f
					off := int64(i) * span * int64(f.Track.ClockRate)
					c.DTS += off
					c.PTS += off
					if f.Track.Kind == media.KindVideo {
						credit <- struct{}{}
					}
					in.Write(&c)
				}
			}
			for range cap(credit) { // wait until the reader has every video frame
				credit <- struct{}{}
			}
			cpu := cpuSeconds() - cpu0
			b.StopTimer()
			in.Close()
			if n := <-done; n < b.N*span*40 {
				b.Fatalf("%d AAC frames for %d s of media, want ~%d", n, b.N*span, b.N*span*48000/1024)
			}
			b.ReportMetric(cpu/float64(b.N*span), "cores/stream")
		})
	}
}

// cpuSeconds is this process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
