// Package motion detects motion in a stream's video without re-encoding: it
// decodes the H.264 (stages/codec), shrinks the luma of a region to a small
// grid of block means and compares each grid with the previous one. The
// score is the mean absolute change of the block means (0–1); block means
// smooth away encoder noise, so a still picture scores ~0.
package motion

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages"
	"github.com/whipcast/whipcast/stages/codec"
)

// Event is a motion start or stop.
type Event struct {
	// Start is true for motion.start, false for motion.stop.
	Start bool
	// Score is the highest score (0–1) seen since the last event.
	Score float64
	// PTS is the stream time of the event in 90 kHz units.
	PTS int64
}

// Region is a rectangle in fractions of the picture (0–1), so it holds
// across resolution changes. The zero value is the whole picture.
type Region struct {
	X, Y, Width, Height float64
}

// Settings configures a Detector.
type Settings struct {
	// Region is where to look. Default the whole picture.
	Region Region
	// Sensitivity from 0 (only big changes) to 1 (the faintest). Default 0.5.
	Sensitivity float64
	// StartFrames is how many pictures in a row must move to start. Default 3.
	StartFrames int
	// StopAfter is how long (90 kHz units) without motion ends it.
	// Default 2 s.
	StopAfter int64
	// OnEvent is called on the detector's goroutine; it must not block.
	OnEvent func(Event)
	// Logger; default discards.
	Logger *slog.Logger
}

// Threshold is the score above which a picture counts as moving: 0.02 at
// sensitivity 0, 0.002 at 0.5, 0.0002 at 1. Measured on 320x240 fixtures: a
// still picture through x264 scores ≤ 0.0001, testsrc2's moving parts
// 0.005–0.008 over the whole picture.
func (s Settings) Threshold() float64 {
	sens := s.Sensitivity
	if sens == 0 {
		sens = 0.5
	}
	return 0.02 * math.Pow(10, -2*sens)
}

const gridW, gridH = 32, 24

// Detector watches one stream until it ends or Close.
type Detector struct {
	s      Settings
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Start subscribes to src and runs until src ends or Close.
func Start(src *media.Stream, s Settings) (*Detector, error) {
	return start(src, nil, s)
}

// StartFrom is Start on r's stream, read through r: a skipping reader the
// caller subscribed before the stream's first frame (a registry
// consumer's), so the detector sees the stream from its first keyframe
// however long its decoder takes to open. The detector reads r and closes
// it when it stops; if StartFrom fails, r stays the caller's.
func StartFrom(r *media.Reader, s Settings) (*Detector, error) {
	return start(r.Stream(), r, s)
}

func start(src *media.Stream, reader *media.Reader, s Settings) (*Detector, error) {
	vt := src.Track(media.KindVideo)
	if vt == nil || vt.Codec != media.CodecH264 {
		return nil, errors.New("motion: stream has no H.264 video track")
	}
	dec, err := codec.NewVideoDecoder()
	if err != nil {
		return nil, err
	}
	if s.StartFrames == 0 {
		s.StartFrames = 3
	}
	if s.StopAfter == 0 {
		s.StopAfter = 2 * codec.VideoClockRate
	}
	if s.Region.Width == 0 || s.Region.Height == 0 {
		s.Region = Region{Width: 1, Height: 1}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Detector{s: s, cancel: cancel, done: make(chan struct{})}
	if reader == nil {
		reader = src.SubscribeSkipping("motion", 0)
	}
	go func() {
		defer close(d.done)
		defer dec.Close()
		d.run(ctx, src, reader, vt, dec)
	}()
	return d, nil
}

// Close stops the detector and waits for it. Safe to call more than once.
func (d *Detector) Close() {
	d.once.Do(d.cancel)
	<-d.done
}

// Done is closed when the detector has stopped.
func (d *Detector) Done() <-chan struct{} { return d.done }

func (d *Detector) run(ctx context.Context, src *media.Stream, reader *media.Reader, vt *media.Track, dec codec.VideoDecoder) {
	defer func() { reader.Close() }()
	var st state
	st.s = d.s
	started := false
	var buf []byte
	for {
		f, err := reader.Read(ctx)
		switch {
		case err == nil:
		case errors.Is(err, media.ErrReaderSkipped):
			// Fell behind: the next frame is a keyframe.
			started, st.prev = false, nil
			continue
		default:
			st.end()
			return
		}
		if f.Track != vt {
			continue
		}
		if !started {
			if !f.Keyframe || f.Config == nil {
				continue
			}
			started = true
		}
		if buf, err = stages.AnnexB(buf, f); err != nil {
			continue
		}
		pics, err := dec.Decode(buf, f.PTS)
		if err != nil {
			d.s.Logger.Debug("motion decode", "err", err)
			continue
		}
		for _, p := range pics {
			st.picture(p)
		}
	}
}

// state is the detector's hysteresis, separate from I/O so tests can feed
// pictures directly.
type state struct {
	s       Settings
	prev    []float64
	grid    []float64
	moving  bool
	run     int   // moving pictures in a row
	lastMov int64 // PTS of the last moving picture
	peak    float64
	lastPTS int64
}

func (st *state) picture(p *codec.Picture) {
	g := st.shrink(p)
	st.lastPTS = p.PTS
	if st.prev == nil {
		st.prev, st.grid = g, nil
		return
	}
	var sum float64
	for i := range g {
		d := g[i] - st.prev[i]
		if d < 0 {
			d = -d
		}
		sum += d
	}
	score := sum / float64(len(g)) / 255
	st.prev, st.grid = g, st.prev[:0]
	if score > st.peak {
		st.peak = score
	}
	if score > st.s.Threshold() {
		st.run++
		st.lastMov = p.PTS
		if !st.moving && st.run >= st.s.StartFrames {
			st.moving = true
			st.emit(Event{Start: true, Score: st.peak, PTS: p.PTS})
		}
		return
	}
	st.run = 0
	if st.moving && p.PTS-st.lastMov >= st.s.StopAfter {
		st.moving = false
		st.emit(Event{Start: false, Score: st.peak, PTS: p.PTS})
	}
	if !st.moving {
		st.peak = score
	}
}

func (st *state) emit(e Event) {
	if st.s.OnEvent != nil {
		st.s.OnEvent(e)
	}
	st.peak = 0
}

// end reports a stop when the stream ends mid-motion.
func (st *state) end() {
	if st.moving {
		st.moving = false
		st.emit(Event{Start: false, Score: st.peak, PTS: st.lastPTS})
	}
}

// shrink averages the region's luma into gridW×gridH block means.
func (st *state) shrink(p *codec.Picture) []float64 {
	r := st.s.Region
	x0, y0 := int(r.X*float64(p.Width)), int(r.Y*float64(p.Height))
	w, h := int(r.Width*float64(p.Width)), int(r.Height*float64(p.Height))
	if x0+w > p.Width {
		w = p.Width - x0
	}
	if y0+h > p.Height {
		h = p.Height - y0
	}
	g := st.grid
	if cap(g) < gridW*gridH {
		g = make([]float64, gridW*gridH)
	}
	g = g[:gridW*gridH]
	clear(g)
	n := make([]int, gridW*gridH)
	if w <= 0 || h <= 0 {
		return g
	}
	for y := 0; y < h; y++ {
		row := p.Y[(y0+y)*p.Width+x0 : (y0+y)*p.Width+x0+w]
		gy := y * gridH / h
		for x, v := range row {
			i := gy*gridW + x*gridW/w
			g[i] += float64(v)
			n[i]++
		}
	}
	for i := range g {
		if n[i] > 0 {
			g[i] /= float64(n[i])
		}
	}
	return g
}
