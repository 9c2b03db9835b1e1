//go:build !nocodec

package stages

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// aacVariant sets the stage's experiment knobs by name: "default" (the
// stage as built), "base" (each packet at once, as before the hold),
// "holdNN" (NN ms of Opus held per codec run), "lock" (the stage goroutine
// on one OS thread), or several joined by "+".
// "none" is no stage at all: the readers read the source (the cost of the
// pacing, the hub and the readers, to subtract).
func aacVariant(name string) {
	aacHold, aacLockThread, pacedNone = 0, false, name == "none"
	if name == "default" {
		aacHold = aacHoldDefault
	}
	for _, p := range strings.Split(name, "+") {
		switch {
		case p == "lock":
			aacLockThread = true
		case strings.HasPrefix(p, "hold"):
			ms, _ := strconv.Atoi(p[4:])
			aacHold = int64(ms) * 48
		}
	}
}

var (
	pacedNone      bool
	aacHoldDefault = aacHold
)

func init() {
	if v := os.Getenv("AACSTAGE_VARIANT"); v != "" {
		aacVariant(v)
	}
}

// BenchmarkAACStagePaced is the stage as a live gateway runs it: N streams
// (AACPACED_N, default 8) at once, each fed its fixture's real H.264 and
// Opus frames at real time (audio 20 ms apart, video 33 ms) by its own
// goroutine, as ingest does, with a reader of each derived stream. Each
// op runs every variant (AACPACED_VARIANTS, comma-separated, default
// "base,hold60,hold100,lock") one after another over the fixture's 10 s,
// so the variants share the same minutes of a shared machine; per variant
// it reports cores per stream (getrusage of the whole process per second
// of media), context switches per stream-second and the process's threads.
func BenchmarkAACStagePaced(b *testing.B) {
	n := 8
	if v, err := strconv.Atoi(os.Getenv("AACPACED_N")); err == nil && v > 0 {
		n = v
	}
	variants := []string{"base", "hold60", "hold100", "lock"}
	if v := os.Getenv("AACPACED_VARIANTS"); v != "" {
		variants = strings.Split(v, ",")
	}
	ogg := "speech-mono.ogg"
	if v := os.Getenv("AACPACED_OGG"); v != "" {
		ogg = v
	}
	fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/"+ogg, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	const span = 10.0 // seconds of media in the fixture
	defer aacVariant("default")
	for i := 0; i < b.N; i++ {
		for _, v := range variants {
			aacVariant(v)
			cpu, csw, threads, aac, lag, maxLag := pacedRun(b, fx, n)
			if aac < n*int(span)*40 {
				b.Fatalf("%s: %d AAC frames from %d streams of %v s", v, aac, n, span)
			}
			b.ReportMetric(cpu/(float64(n)*span), v+"-cores/stream")
			b.ReportMetric(float64(csw)/(float64(n)*span), v+"-csw/stream-s")
			b.ReportMetric(float64(threads), v+"-threads")
			b.ReportMetric(lag, v+"-lag-ms")
			b.ReportMetric(maxLag, v+"-maxlag-ms")
		}
	}
}

// pacedRun also returns the AAC frames' lag: when each reached the reader,
// after the moment its Opus source was written (its PTS on the feeder's
// clock, less the encoder's 1024-sample priming): mean and max, in ms.
func pacedRun(b *testing.B, fx *transmuxtest.Fixture, n int) (cpu float64, csw int64, threads, aac int, lag, maxLag float64) {
	a := NewAAC(codec.AACSettings{}, nil)
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		total          int
		start          time.Time
		lagSum, lagMax float64
	)
	ins := make([]*media.Stream, n)
	for s := range n {
		in := media.NewStream(fmt.Sprint("paced", s), fx.Tracks(), nil)
		d, release := in, func() {}
		if !pacedNone {
			var err error
			if d, release, err = a.Acquire(in); err != nil {
				b.Fatal(err)
			}
		}
		ins[s] = in
		rd := d.Subscribe("bench", 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer release()
			k := 0
			var sum, mx float64
			for {
				f, err := rd.Read(context.Background())
				if err != nil {
					break
				}
				if f.Track.Kind == media.KindAudio {
					k++
					t0 := start.Add(time.Duration(s) * 20 * time.Millisecond / time.Duration(n))
					due := t0.Add(time.Duration((f.PTS + 1024) * int64(time.Second) / 48000))
					l := float64(time.Since(due)) / 1e6
					sum += l
					mx = max(mx, l)
				}
			}
			mu.Lock()
			total += k
			lagSum += sum
			lagMax = max(lagMax, mx)
			mu.Unlock()
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the stages start before the clock does
	cpu0, csw0 := rusage()
	start = time.Now()
	var feeders sync.WaitGroup
	for s, in := range ins {
		feeders.Add(1)
		go func() {
			defer feeders.Done()
			// Streams start 1/n of a packet apart, as independent publishers do.
			t0 := start.Add(time.Duration(s) * 20 * time.Millisecond / time.Duration(n))
			for _, f := range fx.Frames {
				due := t0.Add(time.Duration(f.DTS * int64(time.Second) / int64(f.Track.ClockRate)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				in.Write(f)
			}
		}()
	}
	feeders.Wait()
	threads = procThreads()
	for _, in := range ins {
		in.Close()
	}
	wg.Wait()
	cpu1, csw1 := rusage()
	return cpu1 - cpu0, csw1 - csw0, threads, total, lagSum / float64(max(total, 1)), lagMax
}

func rusage() (cpu float64, csw int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9, ru.Nvcsw + ru.Nivcsw
}

func procThreads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
