package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/rooms"
)

// refusingMedia is a RoomMedia whose every session fails as a busy
// publish or a stream that is not live: the socket's plumbing without
// WebRTC (the e2e tests run the real thing).
type refusingMedia struct{}

func (refusingMedia) Publish(context.Context, string, string) (*ingest.Session, string, error) {
	return nil, "", media.ErrStreamBusy
}

func (refusingMedia) Play(_ context.Context, stream, _ string) (*ingest.Viewer, string, error) {
	return nil, "", fmt.Errorf("%w: %q", media.ErrStreamNotFound, stream)
}

// TestRoomSocket: the socket takes the publish credential (not the admin
// token), refuses with HTTP before the upgrade, then answers each request,
// good or bad, on the open socket, pushes the room's events and closes
// when the room ends.
func TestRoomSocket(t *testing.T) {
	before := runtime.NumGoroutine()
	m := rooms.New(rooms.Settings{Grace: time.Minute})
	defer m.Close()
	reg := media.NewRegistry()
	defer reg.Close()
	m.Attach(reg)
	if _, err := m.Create(context.Background(), "r", 0); err != nil {
		t.Fatal(err)
	}
	a := NewAPI(APIOptions{Streams: fakeStreams{}, Rooms: m, RoomMedia: refusingMedia{}, Auth: &Auth{Admin: "adm", Publish: "pub"}})
	hs := httptest.NewServer(a)
	defer hs.Close()
	ws := "ws" + strings.TrimPrefix(hs.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, c := range []struct {
		path string
		want int
	}{
		{"/v1/rooms/r/ws?participant=a", http.StatusUnauthorized},
		{"/v1/rooms/r/ws?participant=a&token=adm", http.StatusForbidden}, // the admin token is not a publish token
		{"/v1/rooms/nope/ws?participant=a&token=pub", http.StatusNotFound},
		{"/v1/rooms/r/ws?participant=a/b&token=pub", http.StatusBadRequest},
		{"/v1/rooms/r/ws?token=pub", http.StatusBadRequest},
		{"/v1/rooms/r/ws?participant=composite&token=pub", http.StatusBadRequest},
	} {
		_, resp, err := websocket.Dial(ctx, ws+c.path, nil)
		if err == nil || resp == nil || resp.StatusCode != c.want {
			t.Fatalf("%s: %v %v, want %d", c.path, resp, err, c.want)
		}
	}
	// A plain GET (no upgrade) with the publish token: 426 from Accept.
	resp, err := http.Get(hs.URL + "/v1/rooms/r/ws?participant=a&token=pub")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("GET without upgrade: %d", resp.StatusCode)
	}

	c, _, err := websocket.Dial(ctx, ws+"/v1/rooms/r/ws?participant=a", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer pub"}, "Origin": {"https://elsewhere.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	read := func() map[string]any {
		t.Helper()
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		return v
	}
	if v := read(); v["type"] != "room" || v["you"] != "a" {
		t.Fatalf("snapshot %v", v)
	}
	for _, x := range []struct{ send, want string }{
		{`{"type":"publish","ref":"1","sdp":"v=0"}`, "error 409 1"},
		{`{"type":"subscribe","ref":"2","participant":"b","sdp":"v=0"}`, "error 404 2"},
		{`{"type":"candidate","ref":"3","id":"x","candidate":{"candidate":""}}`, "error 404 3"},
		{`{"type":"unsubscribe","ref":"4","id":"x"}`, "error 404 4"},
		{`{"type":"mute","ref":"5","kind":"audio","muted":true}`, "error 409 5"},
		{`{"type":"unpublish","ref":"6"}`, "error 404 6"},
		{`{"type":"nope","ref":"7"}`, "error 400 7"},
		{`]`, "error 400 <nil>"},
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(x.send)); err != nil {
			t.Fatal(err)
		}
		if v := read(); fmt.Sprint(v["type"], " ", v["code"], " ", v["ref"]) != x.want {
			t.Fatalf("%s: %v, want %s", x.send, v, x.want)
		}
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if v := read(); v["code"] != float64(400) {
		t.Fatalf("binary message: %v", v)
	}

	// Someone joins over WHIP (here: the registry) and mutes.
	s, _ := reg.Publish("r/b", nil, nil)
	if v := read(); v["type"] != "joined" || v["participant"] != "b" {
		t.Fatalf("joined %v", v)
	}
	if err := m.Mute(ctx, "r", "b", "video", true); err != nil {
		t.Fatal(err)
	}
	if v := read(); fmt.Sprint(v) != "map[kind:video muted:true participant:b type:muted]" {
		t.Fatalf("muted %v", v)
	}
	reg.Unpublish(s)
	if v := read(); v["type"] != "left" || v["participant"] != "b" {
		t.Fatalf("left %v", v)
	}
	if err := m.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if v := read(); v["type"] != "ended" || v["reason"] != "deleted" {
		t.Fatalf("ended %v", v)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after the room ended: %v", err)
	}
	hs.Close()
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) { // +2: the Manager's actor and the registry
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left:\n%s", n-before-2, buf[:runtime.Stack(buf, true)])
	}
}

// TestRoomSocketJWT: a JWT's sub names the room and participant it may
// publish as, exactly as for WHIP.
func TestRoomSocketJWT(t *testing.T) {
	m := rooms.New(rooms.Settings{Grace: time.Minute})
	defer m.Close()
	if _, err := m.Create(context.Background(), "r", 0); err != nil {
		t.Fatal(err)
	}
	secret := "0123456789abcdef0123456789abcdef"
	a := NewAPI(APIOptions{Streams: fakeStreams{}, Rooms: m, RoomMedia: refusingMedia{}, Auth: &Auth{JWTSecret: secret}})
	hs := httptest.NewServer(a)
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		sub, perm, participant string
		want                   int
	}{
		{"r/alice", "publish", "alice", http.StatusSwitchingProtocols},
		{"r/*", "publish", "bob", http.StatusSwitchingProtocols},
		{"r/alice", "publish", "bob", http.StatusForbidden},
		{"r/alice", "play", "alice", http.StatusForbidden},
		{"other/*", "publish", "alice", http.StatusForbidden},
	} {
		tok, err := SignJWT(map[string]any{"sub": c.sub, "perm": c.perm}, []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/rooms/r/ws?participant=" + c.participant + "&token=" + tok
		ws, resp, err := websocket.Dial(ctx, u, nil)
		if resp == nil || resp.StatusCode != c.want {
			t.Errorf("sub %s perm %s as %s: %v %v, want %d", c.sub, c.perm, c.participant, resp, err, c.want)
		}
		if err == nil {
			ws.Close(websocket.StatusNormalClosure, "")
		}
	}
}
