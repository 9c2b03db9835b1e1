package gateway

import (
	"context"

	"github.com/whipcast/whipcast/events"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/rooms"
	"github.com/whipcast/whipcast/stages/composite"
)

// startComposites makes the composite manager: a room's composite mixes
// every stream {room}/{participant} published while it runs into
// {room}/composite, and ends with its room.
func (g *Gateway) startComposites() {
	g.composites = composite.NewManager(g.Registry, g.cfg.Rooms.MaxComposites, g.log.With("component", "composite"))
	g.composites.OnStop(func(in composite.Info) {
		g.events.Publish(events.Event{Type: "composite.stopped", Stream: in.Stream, Data: map[string]any{"room": in.Room}})
	})
	g.Registry.OnPublish(func(s *media.Stream) {
		if room, _, ok := rooms.Participant(s.Name); ok {
			g.composites.Join(room, s)
		}
	})
}

// compositeAPI is web.Composites: the room must exist, the settings the API
// leaves out come from rooms.composite, and the participants already
// publishing are in from the first picture.
type compositeAPI struct{ g *Gateway }

func (c compositeAPI) Start(ctx context.Context, room string, s composite.Settings) (composite.Info, error) {
	ri, err := c.g.rooms.Get(ctx, room)
	if err != nil {
		return composite.Info{}, err
	}
	d := c.g.cfg.Rooms.Composite
	set := composite.Settings{Layout: d.Layout, Width: d.Width, Height: d.Height, FPS: d.FPS,
		VideoBitrate: int(d.VideoBitrate), AudioBitrate: int(d.AudioBitrate),
		KeyframeInterval: c.g.keyframeInterval, Delay: d.Delay}.Over(s)
	var parts []*media.Stream
	for _, st := range c.g.Registry.List() {
		if r, _, ok := rooms.Participant(st.Name); ok && r == room {
			parts = append(parts, st)
		}
	}
	in, err := c.g.composites.Start(room, set, parts)
	if err == nil {
		// Mutes signalled before the composite started.
		for p, kinds := range ri.Muted {
			for _, k := range kinds {
				c.g.composites.Mute(room, p, k, true)
			}
		}
		c.g.events.Publish(events.Event{Type: "composite.started", Stream: in.Stream, Data: map[string]any{"room": room, "layout": in.Layout}})
	}
	return in, err
}

func (c compositeAPI) Get(room string) (composite.Info, error) { return c.g.composites.Get(room) }
func (c compositeAPI) Stop(room string) error                  { return c.g.composites.Stop(room) }
