package gateway

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/whipcast/whipcast/events"
	"github.com/whipcast/whipcast/rooms"
	"github.com/whipcast/whipcast/web"
)

// startRooms makes the room manager: participants are streams
// {room}/{participant} (WHIP in, WHEP out); joins, leaves and ends go to the
// events socket, and deleting a room ends its publishes.
func (g *Gateway) startRooms() {
	g.rooms = rooms.New(rooms.Settings{
		Max:   g.cfg.Rooms.Max,
		Grace: g.cfg.Rooms.Grace,
		OnEvent: func(e rooms.Event) {
			data := map[string]any{"room": e.Room}
			if e.Participant != "" {
				data["participant"] = e.Participant
			}
			if e.Reason != "" {
				data["reason"] = e.Reason
			}
			if e.Kind != "" { // room.muted, room.unmuted
				data["kind"] = e.Kind
			}
			g.events.Publish(events.Event{Type: e.Type.String(), Stream: e.Stream(), Data: data})
			switch e.Type {
			case rooms.Ended:
				g.composites.End(e.Room) // the composite ends with its room
			case rooms.Muted, rooms.Unmuted:
				g.composites.Mute(e.Room, e.Participant, e.Kind, e.Type == rooms.Muted)
			}
		},
		Kick:   func(stream string) { g.ingest.CloseStream(stream) },
		Logger: g.log.With("component", "rooms"),
	})
	g.rooms.Attach(g.Registry)
}

// registerPlaybackMetrics adds the WHEP and rooms gauges to the gateway's
// metrics registry.
func (g *Gateway) registerPlaybackMetrics(m *web.Metrics) {
	if m == nil {
		return
	}
	m.Registry().MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "whipcast_whep_viewers", Help: "WebRTC (WHEP) playback sessions.",
		}, func() float64 { return float64(g.ingest.Viewers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "whipcast_rooms", Help: "Rooms that exist.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			l, _ := g.rooms.List(ctx)
			return float64(len(l))
		}),
	)
}
