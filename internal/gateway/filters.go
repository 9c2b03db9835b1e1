package gateway

import (
	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/stages/filter"
	"github.com/whipcast/whipcast/web"
)

// startFilters runs a filter stage for every published stream whose rule
// has filters; it publishes {stream}/filtered and ends with the source.
func (g *Gateway) startFilters() {
	g.Filters = filter.New(g.Registry, filter.Settings{
		MaxStages: g.cfg.Filters.MaxStages,
		Video:     codec.VideoSettings{Bitrate: int(g.cfg.Filters.Bitrate), KeyframeInterval: int64(g.keyframeInterval.Seconds() * codec.VideoClockRate)},
		Logger:    g.log.With("component", "filter"),
	})
	g.Registry.OnPublish(func(s *media.Stream) {
		if g.Filters.IsFiltered(s) {
			return // never filter a filtered stream again
		}
		r, ok := g.cfg.Rule(s.Name)
		if !ok || len(r.Filters) == 0 {
			return
		}
		if _, err := g.Filters.Start(s, filterChain(r.Filters)); err != nil {
			g.log.Error("filters not applied; the stream runs unfiltered", "stream", s.Name, "err", err)
			g.events.Publish(web.Event{Type: "filter.failed", Stream: s.Name, Data: map[string]any{"error": err.Error()}})
		}
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
