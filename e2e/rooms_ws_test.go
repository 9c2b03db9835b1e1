package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/internal/whepclient"
	"github.com/whipcast/whipcast/internal/whipclient"
)

// roomSocket is a participant's room signalling socket as a client sees it.
// One goroutine reads; the test takes messages in order with next, which
// keeps the ones it skips for later calls.
type roomSocket struct {
	t       *testing.T
	name    string
	ws      *websocket.Conn
	in      chan map[string]any
	backlog []map[string]any
	refs    int
	readErr chan error
	wg      sync.WaitGroup
}

// dialRoom opens /v1/rooms/{room}/ws as participant, with the token as a
// Bearer header when header is set, else as ?token=.
func dialRoom(ctx context.Context, base, room, participant, token string, header bool) (*websocket.Conn, *http.Response, error) {
	u := strings.Replace(base, "http", "ws", 1) + "/v1/rooms/" + room + "/ws?participant=" + participant
	var opts websocket.DialOptions
	if token != "" && header {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
	} else if token != "" {
		u += "&token=" + token
	}
	return websocket.Dial(ctx, u, &opts)
}

func joinRoom(t *testing.T, ctx context.Context, base, room, participant, token string, header bool) *roomSocket {
	t.Helper()
	ws, _, err := dialRoom(ctx, base, room, participant, token, header)
	if err != nil {
		t.Fatalf("%s joining %s: %v", participant, room, err)
	}
	ws.SetReadLimit(1 << 20)
	rs := &roomSocket{t: t, name: participant, ws: ws, in: make(chan map[string]any, 256), readErr: make(chan error, 1)}
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		defer close(rs.in)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				rs.readErr <- err
				return
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				rs.readErr <- err
				return
			}
			rs.in <- m
		}
	}()
	t.Cleanup(rs.close)
	return rs
}

// close closes the socket and waits for the reader. Safe twice.
func (rs *roomSocket) close() {
	rs.ws.Close(websocket.StatusNormalClosure, "bye")
	rs.ws.CloseNow()
	rs.wg.Wait()
}

func (rs *roomSocket) send(m map[string]any) {
	rs.t.Helper()
	b, _ := json.Marshal(m)
	if err := rs.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		rs.t.Fatalf("%s: send: %v", rs.name, err)
	}
}

// next returns the first message, kept or new, for which match is true.
func (rs *roomSocket) next(what string, match func(m map[string]any) bool) map[string]any {
	rs.t.Helper()
	for i, m := range rs.backlog {
		if match(m) {
			rs.backlog = append(rs.backlog[:i], rs.backlog[i+1:]...)
			return m
		}
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-rs.in:
			if !ok {
				rs.t.Fatalf("%s: socket closed waiting for %s", rs.name, what)
			}
			if match(m) {
				return m
			}
			rs.backlog = append(rs.backlog, m)
		case <-timeout:
			rs.t.Fatalf("%s: no %s; kept %v", rs.name, what, rs.backlog)
		}
	}
}

// nextType returns the next message of type typ with the given field
// values.
func (rs *roomSocket) nextType(typ string, kv ...any) map[string]any {
	rs.t.Helper()
	return rs.next(fmt.Sprint(typ, kv), func(m map[string]any) bool {
		if m["type"] != typ {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(m[kv[i].(string)]) != fmt.Sprint(kv[i+1]) {
				return false
			}
		}
		return true
	})
}

// request sends m with a fresh ref and returns the answer or error that
// carries it.
func (rs *roomSocket) request(m map[string]any) map[string]any {
	rs.t.Helper()
	rs.refs++
	ref := fmt.Sprintf("%s-%d", rs.name, rs.refs)
	m["ref"] = ref
	rs.send(m)
	return rs.next("reply to "+ref, func(m map[string]any) bool { return m["ref"] == ref })
}

// signal is a whipclient/whepclient Signal over the socket: the offer goes
// out as msg (publish or subscribe) and *id receives the session id.
func (rs *roomSocket) signal(msg map[string]any, id *string) func(context.Context, string) (string, error) {
	return func(_ context.Context, offer string) (string, error) {
		msg["sdp"] = offer
		a := rs.request(msg)
		if a["type"] != "answer" {
			return "", fmt.Errorf("%v %v: %v", a["type"], a["code"], a["message"])
		}
		*id = fmt.Sprint(a["id"])
		return fmt.Sprint(a["sdp"]), nil
	}
}

// TestE2ERoomSocket: two Go pion participants meet over the room socket:
// each publishes H.264 + Opus and subscribes to the other, and each gets the
// other's media starting at a keyframe with SPS/PPS. Joins, mutes and
// leaves arrive on both room sockets and on /v1/events; a malformed message
// gets an error and the socket goes on; closing a socket ends its publish
// and subscriptions. Refusals: 400, 401, 403, 404 before the upgrade, 409
// for a name already publishing.
func TestE2ERoomSocket(t *testing.T) {
	checkNoLeaks(t)
	const token = "r00m-publish-token"
	g := startGateway(t, "audio: {codec: opus}\nauth:\n  publish_token: "+token+"\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code, _ := apiCall(t, "POST", base+"/v1/rooms", `{"name": "meet"}`); code != http.StatusCreated {
		t.Fatalf("create room: %d", code)
	}
	ev := dialEvents(t, ctx, base)

	for _, c := range []struct {
		name, room, participant, token string
		want                           int
	}{
		{"unknown room", "nope", "alice", token, http.StatusNotFound},
		{"no token", "meet", "alice", "", http.StatusUnauthorized},
		{"wrong token", "meet", "alice", "wrong", http.StatusForbidden},
		{"bad participant", "meet", "a.b", token, http.StatusBadRequest},
		{"no participant", "meet", "", token, http.StatusBadRequest},
		{"bad room", "a!b", "alice", token, http.StatusBadRequest},
	} {
		ws, resp, err := dialRoom(ctx, base, c.room, c.participant, c.token, true)
		if err == nil {
			ws.CloseNow()
			t.Fatalf("%s: upgraded", c.name)
		}
		if resp == nil || resp.StatusCode != c.want {
			t.Fatalf("%s: %v %v, want %d", c.name, resp, err, c.want)
		}
	}

	alice := joinRoom(t, ctx, base, "meet", "alice", token, true)
	if m := alice.nextType("room"); m["room"] != "meet" || m["you"] != "alice" || fmt.Sprint(m["participants"]) != "[]" {
		t.Fatalf("alice's snapshot %v", m)
	}
	// Bad input is answered and the socket stays usable.
	for _, bad := range []string{`{not json`, `{"type":"dance"}`, `{"type":"publish"}`, `{"type":"mute","kind":"screen","muted":true}`} {
		if err := alice.ws.Write(ctx, websocket.MessageText, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		if m := alice.nextType("error"); m["code"] != float64(400) || m["message"] == "" {
			t.Fatalf("%s: %v", bad, m)
		}
	}
	if m := alice.request(map[string]any{"type": "mute", "kind": "audio", "muted": true}); m["type"] != "error" || m["code"] != float64(409) {
		t.Fatalf("mute before publishing: %v", m)
	}
	if m := alice.request(map[string]any{"type": "subscribe", "participant": "bob", "sdp": "v=0"}); m["type"] != "error" || m["code"] != float64(400) {
		t.Fatalf("subscribe with a broken offer: %v", m)
	}

	popts := whipclient.Options{LoopbackOnly: true, Loop: 2, MaxDuration: 20 * time.Second}
	var alicePub, bobPub string
	popts.Signal = alice.signal(map[string]any{"type": "publish"}, &alicePub)
	aliceSend, err := whipclient.Publish(ctx, "", "", fixtureVideo, fixtureAudio, popts)
	if err != nil {
		t.Fatal(err)
	}
	defer aliceSend.Close()
	if e := ev.next("room.joined"); e.Stream != "meet/alice" {
		t.Fatalf("room.joined %+v", e)
	}
	alice.nextType("joined", "participant", "alice")

	// bob brings his token as ?token= (as a browser must) and sees alice.
	bob := joinRoom(t, ctx, base, "meet", "bob", token, false)
	if m := bob.nextType("room"); fmt.Sprint(m["participants"]) != "[map[name:alice]]" {
		t.Fatalf("bob's snapshot %v", m)
	}
	popts.Signal = bob.signal(map[string]any{"type": "publish"}, &bobPub)
	bobSend, err := whipclient.Publish(ctx, "", "", fixtureVideo, fixtureAudio, popts)
	if err != nil {
		t.Fatal(err)
	}
	defer bobSend.Close()
	alice.nextType("joined", "participant", "bob")
	if e := ev.next("room.joined"); e.Stream != "meet/bob" {
		t.Fatalf("room.joined %+v", e)
	}

	// A name already publishing: 409, on a second socket as on the first.
	alice2 := joinRoom(t, ctx, base, "meet", "alice", token, true)
	if m := alice2.request(map[string]any{"type": "publish", "sdp": aliceOffer(t)}); m["type"] != "error" || m["code"] != float64(409) {
		t.Fatalf("second publish as alice: %v", m)
	}
	alice2.close()

	// Trickle: a candidate for one's own session is taken; for another id,
	// 404; a restart, 422.
	cand := map[string]any{"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "sdpMid": "0"}
	alice.send(map[string]any{"type": "candidate", "id": alicePub, "candidate": cand, "ref": "c-ok"})
	if m := alice.request(map[string]any{"type": "candidate", "id": bobPub, "candidate": cand}); m["code"] != float64(404) {
		t.Fatalf("candidate for bob's session: %v", m)
	}
	if m := alice.request(map[string]any{"type": "candidate", "id": alicePub, "candidate": map[string]any{"candidate": "", "usernameFragment": "other"}}); m["code"] != float64(422) {
		t.Fatalf("restart candidate: %v", m)
	}
	for _, m := range alice.backlog {
		if m["ref"] == "c-ok" {
			t.Fatalf("good candidate refused: %v", m)
		}
	}

	// Each watches the other over the socket.
	var aliceWatch, bobWatch string
	aliceView, err := whepclient.Play(ctx, "", "", whepclient.Options{LoopbackOnly: true,
		Signal: alice.signal(map[string]any{"type": "subscribe", "participant": "bob"}, &aliceWatch)})
	if err != nil {
		t.Fatal(err)
	}
	defer aliceView.Close()
	bobView, err := whepclient.Play(ctx, "", "", whepclient.Options{LoopbackOnly: true,
		Signal: bob.signal(map[string]any{"type": "subscribe", "participant": "alice"}, &bobWatch)})
	if err != nil {
		t.Fatal(err)
	}
	defer bobView.Close()
	for who, v := range map[string]*whepclient.Client{"alice watching bob": aliceView, "bob watching alice": bobView} {
		waitFor(t, 15*time.Second, "media for "+who, func() bool {
			s := v.Stats()
			return s.VideoFrames >= 30 && s.AudioPackets >= 50
		})
		s := v.Stats()
		t.Logf("%s: %d frames (%d keyframes), %d Opus packets, %s + %s", who, s.VideoFrames, s.Keyframes, s.AudioPackets, s.VideoCodec, s.AudioCodec)
		if !s.FirstVideoKeyframe || !s.FirstVideoHasSPS {
			t.Errorf("%s: the first access unit is not an IDR with SPS/PPS", who)
		}
		if !strings.EqualFold(s.VideoCodec, "video/H264") || !strings.EqualFold(s.AudioCodec, "audio/opus") {
			t.Errorf("%s: codecs %s %s", who, s.VideoCodec, s.AudioCodec)
		}
	}
	_, metrics := get(t, base+"/metrics")
	if !strings.Contains(metrics, "\nwhipcast_whep_viewers 2\n") {
		t.Error("/metrics does not count the two subscriptions")
	}

	// Mutes reach the other participant, the muter and /v1/events.
	alice.send(map[string]any{"type": "mute", "kind": "audio", "muted": true})
	bob.nextType("muted", "participant", "alice", "kind", "audio", "muted", true)
	alice.nextType("muted", "participant", "alice", "kind", "audio", "muted", true)
	if e := ev.next("room.muted"); e.Stream != "meet/alice" || e.Data["kind"] != "audio" || e.Data["participant"] != "alice" {
		t.Fatalf("room.muted %+v", e)
	}
	if _, m := apiCall(t, "GET", base+"/v1/rooms/meet", ""); fmt.Sprint(m["muted"]) != "map[alice:[audio]]" {
		t.Fatalf("room after the mute: %v", m)
	}
	alice.send(map[string]any{"type": "mute", "kind": "audio", "muted": false})
	bob.nextType("muted", "participant", "alice", "kind", "audio", "muted", false)
	if e := ev.next("room.unmuted"); e.Data["kind"] != "audio" {
		t.Fatalf("room.unmuted %+v", e)
	}

	// bob closes his socket: his publish and subscription end, alice hears
	// he left and that her subscription to him closed.
	bob.close()
	alice.nextType("left", "participant", "bob")
	alice.nextType("closed", "id", aliceWatch)
	if e := ev.next("room.left"); e.Data["participant"] != "bob" {
		t.Fatalf("room.left %+v", e)
	}
	waitFor(t, 5*time.Second, "bob's publish to leave the registry", func() bool {
		_, ok := g.Registry.Get("meet/bob")
		return !ok
	})
	select {
	case <-bobView.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("bob's subscription outlived his socket")
	}
	if _, m := apiCall(t, "GET", base+"/v1/rooms/meet", ""); fmt.Sprint(m["participants"]) != "[alice]" {
		t.Fatalf("room after bob left: %v", m)
	}

	// unpublish ends alice's publish but not her socket.
	if m := alice.request(map[string]any{"type": "unpublish"}); m["type"] != "closed" || m["id"] != alicePub {
		t.Fatalf("unpublish: %v", m)
	}
	alice.nextType("left", "participant", "alice")
	if m := alice.request(map[string]any{"type": "unpublish"}); m["code"] != float64(404) {
		t.Fatalf("second unpublish: %v", m)
	}
	waitFor(t, 5*time.Second, "no WHEP viewers", func() bool {
		_, metrics := get(t, base+"/metrics")
		return strings.Contains(metrics, "\nwhipcast_whep_viewers 0\n")
	})

	// Deleting the room ends the socket with "ended".
	if code, _ := apiCall(t, "DELETE", base+"/v1/rooms/meet", ""); code != http.StatusNoContent {
		t.Fatalf("delete room: %d", code)
	}
	alice.nextType("ended", "reason", "deleted")
	alice.wg.Wait()
	var ce websocket.CloseError
	if err := <-alice.readErr; !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure {
		t.Fatalf("socket end after the room ended: %v", err)
	}
}

// aliceOffer is a sendonly H.264 + Opus offer from a throwaway pion peer,
// for requests that must fail before any media flows.
func aliceOffer(t *testing.T) string {
	t.Helper()
	var offer string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := whipclient.Publish(ctx, "", "", fixtureVideo, fixtureAudio, whipclient.Options{LoopbackOnly: true,
		Signal: func(_ context.Context, o string) (string, error) { offer = o; return "", errors.New("only the offer") }})
	if err == nil || offer == "" {
		t.Fatalf("making an offer: %v", err)
	}
	return offer
}
