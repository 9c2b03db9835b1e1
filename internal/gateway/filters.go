package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/events"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/stages/filter"
	"github.com/whipcast/whipcast/web"
)

// filterChains is the filter API over filter.Stages. It serialises every
// start and stop (a rule's at publish and the API's: a replace is a stop
// then a start, which must not interleave with another). What
// GET /v1/streams/{stream}/filters shows of a stage is its label in
// filter.Stages (a filterRun), so the two never disagree.
type filterChains struct {
	g   *Gateway
	api sync.Mutex
}

// filterRun is a stage's label: the chain as configured or posted.
type filterRun struct {
	chain   []config.Filter
	source  string // "config" or "api"
	started time.Time
}

// startFilters runs a filter stage for every published stream whose rule
// has filters; it publishes {stream}/filtered and ends with the source.
// The start (which opens the decoder, filter graph and encoder) is a
// registry consumer: on a goroutine of its own, not the publisher's first
// frame, reading through a reader subscribed before that frame; the stage
// it starts belongs to g.Filters.
func (g *Gateway) startFilters() {
	g.Filters = filter.New(g.Registry, filter.Settings{
		MaxStages: g.cfg.Filters.MaxStages,
		Video:     codec.VideoSettings{Bitrate: int(g.cfg.Filters.Bitrate), KeyframeInterval: int64(g.keyframeInterval.Seconds() * codec.VideoClockRate)},
		Logger:    g.log.With("component", "filter"),
	})
	g.filterChains = &filterChains{g: g}
	// The streams a rule filters: the stage reads them from their first
	// frame through the consumer's reader, and this run lasts as long as
	// the stage (an API replace or stop ends it too).
	wants := func(s *media.Stream) bool {
		r, ok := g.cfg.Rule(s.Name)
		return ok && len(r.Filters) > 0 && !g.Filters.IsFiltered(s) // never filter a filtered stream again
	}
	g.Registry.ConsumeReaderWhen("filter", media.DefaultQueueLen, wants, func(ctx context.Context, rd *media.Reader) error {
		s := rd.Stream()
		r, _ := g.cfg.Rule(s.Name)
		// Under the API's lock, so that a rule's start and its record
		// never interleave with an API replace of the same stream.
		fc := g.filterChains
		fc.api.Lock()
		if g.Filters.Has(s) {
			fc.api.Unlock()
			return nil // the API was first
		}
		run := filterRun{chain: r.Filters, source: "config", started: time.Now().UTC()}
		out, err := g.Filters.StartFrom(rd, filterChain(r.Filters), run)
		fc.api.Unlock()
		if err != nil {
			if s.Context().Err() != nil {
				return nil // the stream (or the gateway) ended first
			}
			g.events.Publish(events.Event{Type: "filter.failed", Stream: s.Name, Data: map[string]any{"error": err.Error()}})
			return fmt.Errorf("filters not applied; the stream runs unfiltered: %w", err)
		}
		select {
		case <-out.Done():
		case <-ctx.Done():
		}
		return nil
	})
}

func filterChain(fs []config.Filter) filter.Chain {
	var c filter.Chain
	for _, f := range fs {
		switch f.Kind() {
		case "rotate":
			c = append(c, filter.Rotate{Degrees: f.Rotate})
		case "scale":
			c = append(c, filter.Scale{Width: f.ScaleWidth, Height: f.ScaleHeight})
		case "crop":
			c = append(c, filter.Crop{X: f.Crop.X, Y: f.Crop.Y, Width: f.Crop.Width, Height: f.Crop.Height})
		case "text":
			c = append(c, filter.Text{Title: f.Text.Title, Clock: f.Text.Clock, Size: f.Text.Size})
		case "image":
			c = append(c, filter.Image{Path: f.Image.Path, X: f.Image.X, Y: f.Image.Y})
		case "gain":
			c = append(c, filter.Gain{Factor: f.Gain})
		}
	}
	return c
}

// fitChain checks a chain against the stream's picture: H.264 video to
// filter, and each crop inside the picture that reaches it (after rotates,
// scales and earlier crops). Before the first keyframe the size is unknown
// and only the codec is checked.
func fitChain(s *media.Stream, chain []config.Filter) error {
	vt := s.Track(media.KindVideo)
	if vt == nil || vt.Codec != media.CodecH264 {
		return errors.New("the stream has no H.264 video to filter")
	}
	c := s.LastConfig(vt)
	if c == nil {
		return nil
	}
	w, h := c.Width, c.Height
	for i, f := range chain {
		switch f.Kind() {
		case "rotate":
			if f.Rotate != 180 {
				w, h = h, w
			}
		case "scale":
			w, h = f.ScaleWidth, f.ScaleHeight
		case "crop":
			cr := f.Crop
			if cr.X+cr.Width > w || cr.Y+cr.Height > h {
				return fmt.Errorf("filters[%d].crop: %dx%d at (%d,%d) does not fit the %dx%d picture it gets", i, cr.Width, cr.Height, cr.X, cr.Y, w, h)
			}
			w, h = cr.Width, cr.Height
		}
	}
	return nil
}

// running returns the label of s's stage, if one runs.
func (fc *filterChains) running(s *media.Stream) (filterRun, bool) {
	l, ok := fc.g.Filters.Label(s)
	r, isRun := l.(filterRun)
	return r, ok && isRun
}

func (fc *filterChains) status(s *media.Stream, r filterRun) web.FilterStatus {
	return web.FilterStatus{Stream: s.Name, Output: s.Name + filter.Suffix, Filters: r.chain, Source: r.source, Started: r.started}
}

// Filters implements web.StreamFilters.
func (fc *filterChains) Filters(stream string) (web.FilterStatus, bool) {
	s, ok := fc.g.Registry.Get(stream)
	if !ok {
		return web.FilterStatus{}, false
	}
	r, ok := fc.running(s)
	if !ok {
		return web.FilterStatus{}, false
	}
	return fc.status(s, r), true
}

// SetFilters implements web.StreamFilters: validate everything first, then
// stop the running stage (its {stream}/filtered ends) and start the new one
// (a new {stream}/filtered begins).
func (fc *filterChains) SetFilters(stream string, body []byte) (web.FilterStatus, error) {
	s, ok := fc.g.Registry.Get(stream)
	if !ok {
		return web.FilterStatus{}, web.ErrStreamNotLive
	}
	if fc.g.Filters.IsFiltered(s) {
		return web.FilterStatus{}, fmt.Errorf("%w: %s is a filtered stream; change its source's filters", web.ErrBadSpec, stream)
	}
	chain, err := config.ParseFilters(body, fc.g.cfg.Filters.ImageDir)
	if err != nil {
		return web.FilterStatus{}, fmt.Errorf("%w: %w", web.ErrBadSpec, err)
	}
	if err := fitChain(s, chain); err != nil {
		return web.FilterStatus{}, fmt.Errorf("%w: %w", web.ErrUnfit, err)
	}
	fc.api.Lock()
	defer fc.api.Unlock()
	replacing := fc.g.Filters.Has(s)
	if !replacing && fc.g.Filters.Running() >= fc.g.Filters.MaxStages() {
		return web.FilterStatus{}, fmt.Errorf("%w: %d streams are filtered (filters.max_stages)", web.ErrFilterLimit, fc.g.Filters.MaxStages())
	}
	if replacing {
		fc.g.Filters.Stop(s)
	}
	r := filterRun{chain: chain, source: "api", started: time.Now().UTC()}
	if _, err := fc.g.Filters.StartLabeled(s, filterChain(chain), r); err != nil {
		switch {
		case errors.Is(err, filter.ErrTooManyStages):
			err = fmt.Errorf("%w: %w", web.ErrFilterLimit, err)
		case errors.Is(err, filter.ErrNoVideo), errors.Is(err, codec.ErrBadSettings):
			err = fmt.Errorf("%w: %w", web.ErrUnfit, err)
		}
		if replacing {
			err = fmt.Errorf("%w (the previous filters were stopped; the stream now runs unfiltered)", err)
		}
		return web.FilterStatus{}, err
	}
	fc.g.log.Info("filters set through the API", "stream", stream, "replaced", replacing)
	return fc.status(s, r), nil
}

// StopFilters implements web.StreamFilters.
func (fc *filterChains) StopFilters(stream string) error {
	s, ok := fc.g.Registry.Get(stream)
	if !ok {
		return web.ErrStreamNotLive
	}
	fc.api.Lock()
	defer fc.api.Unlock()
	if !fc.g.Filters.Has(s) {
		return fmt.Errorf("%w: no filters run on stream %s", web.ErrNotRunning, stream)
	}
	fc.g.Filters.Stop(s)
	fc.g.log.Info("filters stopped through the API", "stream", stream)
	return nil
}
