package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/events"
)

// Event, Bus and Subscription are the domain bus of package events, which
// this package adapts to a WebSocket (GET /v1/events).
type (
	Event        = events.Event
	Bus          = events.Bus
	Subscription = events.Subscription
)

// DefaultEventQueue is a subscriber's queue length when Bus.Queue is 0.
const DefaultEventQueue = events.DefaultEventQueue

// eventWriteTimeout bounds one socket write: a client that does not read
// for this long is dropped.
const eventWriteTimeout = 5 * time.Second

// events upgrades to a WebSocket (RFC 6455) and sends each event as one
// JSON text message. Messages from the client are ignored. The origin must
// be the gateway's own (coder/websocket's default check), so another site
// cannot open the socket with a visitor's loopback access.
func (a *API) events(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if a.opt.Events == nil {
		writeError(w, notImplemented("events"))
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	defer c.CloseNow()
	sub := a.opt.Events.Subscribe()
	defer sub.Close()
	ctx := c.CloseRead(r.Context())
	hello, _ := json.Marshal(Event{Type: "hello", Time: time.Now().UTC()})
	if writeEvent(ctx, c, hello) != nil {
		return
	}
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				if sub.Dropped() {
					c.Close(websocket.StatusPolicyViolation, "too slow: event queue full")
				} else {
					c.Close(websocket.StatusGoingAway, "server closing")
				}
				return
			}
			b, _ := json.Marshal(e)
			if writeEvent(ctx, c, b) != nil {
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, eventWriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func writeEvent(ctx context.Context, c *websocket.Conn, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, eventWriteTimeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}
