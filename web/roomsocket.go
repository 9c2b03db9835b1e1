package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/rooms"
)

// RoomMedia makes the WebRTC sessions of the room socket: the same calls
// WHIP and WHEP make, on the same port and PeerConnection setup.
// *ingest.Server is one.
type RoomMedia interface {
	Publish(ctx context.Context, stream, offerSDP string) (*ingest.Session, string, error)
	Play(ctx context.Context, stream, offerSDP string) (*ingest.Viewer, string, error)
}

var _ RoomMedia = (*ingest.Server)(nil)

// roomSocketPath is the room signalling socket. It is not behind the admin
// token: a participant brings a publish credential (roomSocket).
const roomSocketPath = "/v1/rooms/{room}/ws"

const (
	// signalTimeout bounds one publish or subscribe (ICE gathering), as
	// WHIP's POST.
	signalTimeout = 10 * time.Second
	// maxRoomSubscriptions bounds the sessions one socket may hold.
	maxRoomSubscriptions = 64
)

// roomSocket serves GET /v1/rooms/{room}/ws?participant={name}: a
// WebSocket (RFC 6455) on which a participant publishes, watches the
// others, trickles ICE, signals mutes and follows joins, leaves and mutes
// (docs/api.md). It needs the credential WHIP needs to publish
// {room}/{participant} (publish token or JWT, as Bearer or ?token=);
// being in the room then lets it watch the room's other participants.
// Refusals before the upgrade are HTTP: 400 bad names, 401/403 auth, 404
// unknown room. Closing the socket ends its publish and subscriptions.
func (a *API) roomSocket(w http.ResponseWriter, r *http.Request, v map[string]string) {
	rm := a.opt.Rooms
	if rm == nil || a.opt.RoomMedia == nil {
		writeError(w, notImplemented("room signalling"))
		return
	}
	room, participant := v["room"], r.URL.Query().Get("participant")
	if err := rooms.ValidName(room); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_request", err.Error()})
		return
	}
	if rooms.ValidName(participant) != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_request", "?participant= must be one name segment [A-Za-z0-9_-]{1,64}"})
		return
	}
	if _, _, ok := rooms.Participant(room + "/" + participant); !ok {
		writeError(w, &apiError{http.StatusBadRequest, "bad_request", "?participant=" + participant + " is reserved"})
		return
	}
	if check := a.opt.Auth.PublishAuth(); check != nil {
		switch err := check(r, room+"/"+participant); {
		case errors.Is(err, ingest.ErrUnauthorized):
			w.Header().Set("WWW-Authenticate", `Bearer realm="whipcast"`)
			writeError(w, &apiError{http.StatusUnauthorized, "unauthorized", "a publish token or JWT is required (Authorization: Bearer or ?token=)"})
			return
		case err != nil:
			writeError(w, &apiError{http.StatusForbidden, "forbidden", "the token may not publish " + room + "/" + participant})
			return
		}
	}
	info, watch, err := rm.Watch(r.Context(), room)
	if err != nil {
		roomError(w, err)
		return
	}
	defer watch.Close()
	// Any origin, like WHIP and WHEP (CORS *): the socket carries no
	// ambient authority, only the token the page itself hands over.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered
	}
	defer ws.CloseNow()
	ws.SetReadLimit(maxSignalMessage)
	ctx, cancel := context.WithCancel(r.Context())
	c := &roomConn{ws: ws, rooms: rm, media: a.opt.RoomMedia, room: room, participant: participant,
		ctx: ctx, cancel: cancel, subs: map[string]*ingest.Viewer{},
		log: a.log.With("room", room, "participant", participant)}
	defer c.close()
	if c.send(roomSnapshot(info, participant)) != nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.pump(watch)
	}()
	c.readLoop()
}

func roomSnapshot(in rooms.Info, you string) signalRoom {
	m := signalRoom{Type: "room", Room: in.Name, You: you, Participants: make([]signalParticipant, 0, len(in.Participants))}
	for _, p := range in.Participants {
		m.Participants = append(m.Participants, signalParticipant{Name: p, Muted: in.Muted[p]})
	}
	return m
}

// roomConn is one participant's socket. The handler goroutine reads and
// runs requests; pump writes the room's events; one goroutine per session
// reports its end. close stops them all and ends every session.
type roomConn struct {
	ws                *websocket.Conn
	rooms             Rooms
	media             RoomMedia
	room, participant string
	log               *slog.Logger
	ctx               context.Context // the socket's life
	cancel            context.CancelFunc
	wg                sync.WaitGroup // pump and session watchers

	mu   sync.Mutex
	pub  *ingest.Session
	subs map[string]*ingest.Viewer
}

// send writes one JSON message; a failed write ends the socket.
func (c *roomConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := writeEvent(c.ctx, c.ws, b); err != nil {
		c.cancel()
		return err
	}
	return nil
}

func (c *roomConn) sendError(ref, id string, code int, msg string) {
	_ = c.send(signalError{Type: "error", Ref: ref, ID: id, Code: code, Message: msg})
}

// readLoop runs client messages until the socket closes. Nothing a client
// sends closes it but a message over the read limit.
func (c *roomConn) readLoop() {
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.sendError("", "", http.StatusBadRequest, "send JSON text messages")
			continue
		}
		m, perr := parseSignal(b)
		if perr != nil {
			_ = c.send(perr)
			continue
		}
		c.handle(m)
	}
}

func (c *roomConn) handle(m signalRequest) {
	switch m.Type {
	case msgPublish:
		ctx, cancel := context.WithTimeout(c.ctx, signalTimeout)
		defer cancel()
		sess, answer, err := c.media.Publish(ctx, c.room+"/"+c.participant, m.SDP)
		if err != nil {
			c.mediaError(m.Ref, "", "publish", err)
			return
		}
		c.mu.Lock()
		c.pub = sess
		c.mu.Unlock()
		c.watchSession(sess.ID(), sess.Done(), sess.Err)
		_ = c.send(signalAnswer{Type: "answer", Ref: m.Ref, ID: sess.ID(), SDP: answer})
	case msgUnpublish:
		c.mu.Lock()
		sess := c.pub
		c.pub = nil
		c.mu.Unlock()
		if sess == nil {
			c.sendError(m.Ref, "", http.StatusNotFound, "not publishing")
			return
		}
		sess.Close()
		_ = c.send(signalEvent{Type: "closed", Ref: m.Ref, ID: sess.ID(), Reason: "unpublished"})
	case msgSubscribe:
		c.mu.Lock()
		n := len(c.subs)
		c.mu.Unlock()
		if n >= maxRoomSubscriptions {
			c.sendError(m.Ref, "", http.StatusTooManyRequests, "too many subscriptions on one socket")
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, signalTimeout)
		defer cancel()
		v, answer, err := c.media.Play(ctx, c.room+"/"+m.Participant, m.SDP)
		if err != nil {
			c.mediaError(m.Ref, "", "subscribe to "+m.Participant, err)
			return
		}
		c.mu.Lock()
		c.subs[v.ID()] = v
		c.mu.Unlock()
		c.watchSession(v.ID(), v.Done(), v.Err)
		_ = c.send(signalAnswer{Type: "answer", Ref: m.Ref, ID: v.ID(), Participant: m.Participant, SDP: answer})
	case msgUnsubscribe:
		c.mu.Lock()
		v := c.subs[m.ID]
		delete(c.subs, m.ID)
		c.mu.Unlock()
		if v == nil {
			c.sendError(m.Ref, m.ID, http.StatusNotFound, "no such subscription")
			return
		}
		v.Close()
		_ = c.send(signalEvent{Type: "closed", Ref: m.Ref, ID: m.ID, Reason: "unsubscribed"})
	case msgCandidate:
		var err error
		c.mu.Lock()
		pub, v := c.pub, c.subs[m.ID]
		c.mu.Unlock()
		switch {
		case pub != nil && pub.ID() == m.ID:
			err = pub.AddCandidate(m.Candidate.ICECandidateInit)
		case v != nil:
			err = v.AddCandidate(m.Candidate.ICECandidateInit)
		default:
			err = ingest.ErrSessionNotFound
		}
		if err != nil {
			c.mediaError(m.Ref, m.ID, "candidate", err)
		}
	case msgMute:
		err := c.rooms.Mute(c.ctx, c.room, c.participant, m.Kind, *m.Muted)
		if err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, rooms.ErrBadKind):
				code = http.StatusBadRequest
			case errors.Is(err, rooms.ErrNotParticipant):
				code = http.StatusConflict
			case errors.Is(err, rooms.ErrNotFound):
				code = http.StatusNotFound
			case errors.Is(err, rooms.ErrClosed), errors.Is(err, context.Canceled):
				code = http.StatusServiceUnavailable
			}
			c.sendError(m.Ref, "", code, err.Error())
		}
	}
}

// mediaError answers a failed publish, subscribe or candidate with the
// status WHIP or WHEP would give.
func (c *roomConn) mediaError(ref, id, what string, err error) {
	code := ingest.ErrorStatus(err)
	if code == http.StatusInternalServerError {
		c.log.Error("room socket: "+what+" failed", "err", err)
	}
	c.sendError(ref, id, code, what+": "+err.Error())
}

// watchSession tells the client when one of its sessions ends by itself
// (the watched participant left, the connection failed).
func (c *roomConn) watchSession(id string, done <-chan struct{}, why func() error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-done:
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		mine := false
		if c.pub != nil && c.pub.ID() == id {
			c.pub, mine = nil, true
		} else if _, ok := c.subs[id]; ok {
			delete(c.subs, id)
			mine = true
		}
		c.mu.Unlock()
		if !mine {
			return // unpublish or unsubscribe has answered
		}
		reason := "ended"
		if err := why(); err != nil {
			reason = err.Error()
		}
		_ = c.send(signalEvent{Type: "closed", ID: id, Reason: reason})
	}()
}

// pump sends the room's events and keeps the socket alive; when the room
// ends (or the gateway stops) it closes the socket.
func (c *roomConn) pump(w *rooms.Watcher) {
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case e, ok := <-w.C:
			if !ok {
				switch {
				case w.Dropped():
					c.ws.Close(websocket.StatusPolicyViolation, "too slow: room event queue full")
				case c.ctx.Err() == nil:
					c.ws.Close(websocket.StatusGoingAway, "room closed")
				}
				c.cancel()
				return
			}
			if c.send(roomEventMessage(e)) != nil {
				return
			}
			if e.Type == rooms.Ended {
				c.ws.Close(websocket.StatusNormalClosure, "room ended")
				c.cancel()
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(c.ctx, eventWriteTimeout)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				c.cancel()
				return
			}
		case <-c.ctx.Done():
			return
		}
	}
}

// close ends the socket's sessions and waits for its goroutines.
func (c *roomConn) close() {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	pub, subs := c.pub, c.subs
	c.pub, c.subs = nil, nil
	c.mu.Unlock()
	for _, v := range subs {
		v.Close()
	}
	if pub != nil {
		pub.Close()
	}
}
