// Package bench is whipcast-bench, the load tool of issue 12: N WHIP
// publishers (H.264 + Opus files, paced in real time, keyframe phases
// spread or aligned) with optional LL-HLS and DASH readers on every
// stream, against any gateway given by URL templates. It reports connect
// time, time to the first playable segment, packaging delay, loss (from
// the gateway's RTCP receiver reports), pacing and, given the gateway's
// pid, its CPU and peak RSS: one JSON line and a table.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"
)

// sampleEvery is how often the gateway and machine are sampled.
const sampleEvery = 500 * time.Millisecond

// Run is the command: it parses args, runs the load and writes the report
// to stdout; it returns the exit code (0, 1 when no publisher connected,
// 2 on a bad command line). `table [FILE...]` instead turns the JSON lines
// of earlier runs into one Markdown table (runTable).
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "table" {
		return runTable(args[1:], os.Stdin, stdout, stderr)
	}
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	c, cleanup, err := generate(ctx, c)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	for _, p := range []string{c.Video, c.Audio} {
		if _, err := os.Stat(p); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	var sink *rtmpSink
	if c.RTMPListen != "" {
		if sink, err = listenRTMP(c.RTMPListen); err != nil {
			fmt.Fprintln(stderr, "rtmp sink:", err)
			return 2
		}
	}
	r := run(ctx, c, sink, stderr)
	if err := r.writeJSON(stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := r.writeTable(stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if r.Connected == 0 {
		return 1
	}
	return 0
}

// sinkDrain is how long the RTMP sink waits, after the publishers stopped,
// for the gateway to end its RTMP sessions before it closes them itself.
const sinkDrain = 3 * time.Second

// run runs the publishers and readers; sink (nil for none) is the RTMP
// server the gateway pushes to, and run closes it.
func run(ctx context.Context, c Config, sink *rtmpSink, stderr io.Writer) Report {
	tr := &http.Transport{MaxIdleConnsPerHost: 4 * c.N, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	// Blocking reloads are held up to three segment targets by the
	// server; 30 s is beyond any of that and still ends a stuck request.
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	sctx, stopSampling := context.WithCancel(ctx)
	samples := make(chan []sample, 1)
	go func() { samples <- sampleUntil(sctx, c.PID) }()

	results := make([]streamResult, c.N)
	var wg sync.WaitGroup
	for i := range c.N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runStream(ctx, c, i, client)
		}()
	}
	wg.Wait()
	stopSampling()
	ss := <-samples

	r := summarizeRun(c, results)
	if sink != nil {
		sink.drain(sinkDrain)
		r.RTMP = summarizeRTMP(c, results, sink.received())
	}
	if a, b, ok := window(ss, results); ok {
		var hwm, rss int64
		if c.PID > 0 {
			var err error
			if hwm, rss, err = readMemory(c.PID); err != nil {
				fmt.Fprintln(stderr, "gateway memory:", err)
			}
		}
		r.addProcess(a, b, c.PID, hwm, rss)
	}
	return r
}

// sampleUntil samples the gateway and the machine until ctx ends.
func sampleUntil(ctx context.Context, pid int) []sample {
	var out []sample
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		if s, err := readSample(pid); err == nil {
			out = append(out, s)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			if s, err := readSample(pid); err == nil {
				out = append(out, s)
			}
			return out
		}
	}
}

// window picks the samples that bound the steady state: from the first
// sample after the last publisher connected to the last before the first
// one stopped; the whole run when that holds fewer than two samples.
func window(ss []sample, rs []streamResult) (a, b sample, ok bool) {
	if len(ss) < 2 {
		return a, b, false
	}
	var from, to time.Time
	for _, r := range rs {
		if !r.connected {
			continue
		}
		if up := r.post.Add(r.connect); up.After(from) {
			from = up
		}
		if to.IsZero() || r.done.Before(to) {
			to = r.done
		}
	}
	first, last := -1, -1
	for i, s := range ss {
		if first < 0 && !s.at.Before(from) {
			first = i
		}
		if !to.IsZero() && !s.at.After(to) {
			last = i
		}
	}
	if first < 0 || last <= first {
		return ss[0], ss[len(ss)-1], true
	}
	return ss[first], ss[last], true
}
