package gateway

import (
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
			g.events.Publish(web.Event{Type: e.Type.String(), Stream: e.Stream(), Data: data})
		},
		Kick:   func(stream string) { g.ingest.CloseStream(stream) },
		Logger: g.log.With("component", "rooms"),
	})
	g.rooms.Attach(g.Registry)
}
