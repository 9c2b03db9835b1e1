package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/whipcast/whipcast/internal/whepclient"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/web"
)

// eventSocket reads the gateway's events socket.
type eventSocket struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialEvents(t *testing.T, ctx context.Context, base string) *eventSocket {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	ws.SetReadLimit(1 << 20)
	es := &eventSocket{t: t, ws: ws}
	es.next("hello")
	return es
}

// next returns the next event of type want, skipping others.
func (es *eventSocket) next(want string) web.Event {
	es.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, b, err := es.ws.Read(ctx)
		cancel()
		if err != nil {
			es.t.Fatalf("waiting for %s: %v", want, err)
		}
		var e web.Event
		if err := json.Unmarshal(b, &e); err != nil {
			es.t.Fatal(err)
		}
		if e.Type == want {
			return e
		}
	}
}

// apiCall sends a JSON request to the API and decodes the answer.
func apiCall(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// TestE2ERooms: a room with two Go publishers, each watching the other over
// WHEP (SFU forwarding: each viewer gets the other's own H.264 + Opus), with
// room.joined, room.left and room.ended over the real events socket, and the
// API's refusals (duplicate name, rooms.max).
func TestE2ERooms(t *testing.T) {
	checkNoLeaks(t)
	g := startGateway(t, "audio: {codec: opus}\nrooms: {max: 2, grace: 1s}\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	ev := dialEvents(t, ctx, base)

	if code, m := apiCall(t, "POST", base+"/v1/rooms", `{"name": "studio", "grace": "1500ms"}`); code != http.StatusCreated || m["grace"] != "1.5s" {
		t.Fatalf("create room: %d %v", code, m)
	}
	if code, m := apiCall(t, "POST", base+"/v1/rooms", `{"name": "studio"}`); code != http.StatusConflict || m["code"] != "room_exists" {
		t.Fatalf("duplicate room: %d %v", code, m)
	}
	if code, _ := apiCall(t, "POST", base+"/v1/rooms", `{"name": "a/b"}`); code != http.StatusBadRequest {
		t.Fatalf("bad room name: %d", code)
	}
	if code, _ := apiCall(t, "POST", base+"/v1/rooms", `{"name": "spare", "grace": 60}`); code != http.StatusCreated {
		t.Fatalf("second room: %d", code)
	}
	if code, m := apiCall(t, "POST", base+"/v1/rooms", `{"name": "third"}`); code != http.StatusConflict || m["code"] != "room_limit" ||
		!strings.Contains(fmt.Sprint(m["error"]), "rooms.max") {
		t.Fatalf("room past rooms.max: %d %v", code, m)
	}
	if code, _ := apiCall(t, "DELETE", base+"/v1/rooms/spare", ""); code != http.StatusNoContent {
		t.Fatalf("delete room: %d", code)
	}
	if e := ev.next("room.ended"); e.Data["room"] != "spare" || e.Data["reason"] != "deleted" {
		t.Fatalf("room.ended %+v", e)
	}

	popts := whipclient.Options{LoopbackOnly: true, Loop: 2, MaxDuration: 12 * time.Second}
	pubs := map[string]*whipclient.Client{}
	for _, p := range []string{"alice", "bob"} {
		c, err := whipclient.Publish(ctx, base+"/whip/studio/"+p, "", fixtureVideo, fixtureAudio, popts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pubs[p] = c
		if e := ev.next("room.joined"); e.Stream != "studio/"+p || e.Data["participant"] != p || e.Data["room"] != "studio" {
			t.Fatalf("room.joined %+v", e)
		}
	}
	if code, m := apiCall(t, "GET", base+"/v1/rooms/studio", ""); code != http.StatusOK || fmt.Sprint(m["participants"]) != "[alice bob]" {
		t.Fatalf("GET room: %d %v", code, m)
	}

	// Each watches the other.
	viewers := map[string]*whepclient.Client{}
	for watcher, watched := range map[string]string{"alice": "bob", "bob": "alice"} {
		v, err := whepclient.Play(ctx, base+"/whep/studio/"+watched, "", whepclient.Options{LoopbackOnly: true})
		if err != nil {
			t.Fatalf("%s watching %s: %v", watcher, watched, err)
		}
		defer v.Close()
		viewers[watched] = v
	}
	for watched, v := range viewers {
		waitFor(t, 10*time.Second, "media of "+watched, func() bool {
			s := v.Stats()
			return s.VideoFrames >= 30 && s.AudioPackets >= 50
		})
		s := v.Stats()
		t.Logf("viewer of %s: %d frames (%d keyframes), %d Opus packets", watched, s.VideoFrames, s.Keyframes, s.AudioPackets)
		if !s.FirstVideoKeyframe || !s.FirstVideoHasSPS {
			t.Errorf("viewer of %s: first access unit is not an IDR with SPS/PPS", watched)
		}
	}

	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{"whipcast_whep_viewers 2", "whipcast_rooms 1"} {
		if !strings.Contains(metrics, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Leaving: alice's viewer ends with her stream; the room ends once
	// empty for its grace period.
	if err := pubs["alice"].Close(); err != nil {
		t.Fatal(err)
	}
	if e := ev.next("room.left"); e.Data["participant"] != "alice" {
		t.Fatalf("room.left %+v", e)
	}
	select {
	case <-viewers["alice"].Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer of alice outlived her stream")
	}
	if err := pubs["bob"].Close(); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	if e := ev.next("room.left"); e.Data["participant"] != "bob" {
		t.Fatalf("room.left %+v", e)
	}
	e := ev.next("room.ended")
	if e.Data["room"] != "studio" || e.Data["reason"] != "empty" {
		t.Fatalf("room.ended %+v", e)
	}
	if d := time.Since(left); d < 1400*time.Millisecond || d > 4*time.Second {
		t.Errorf("room ended %v after the last leave, want its 1.5s grace", d)
	}
	if code, _ := apiCall(t, "GET", base+"/v1/rooms/studio", ""); code != http.StatusNotFound {
		t.Fatalf("GET ended room: %d", code)
	}
}

// TestE2ERoomSoak joins and leaves a room 100 times (WHIP publish, a WHEP
// viewer, then DELETE), four participants at a time, and checks that every
// join and leave was announced and that no goroutine is left behind.
func TestE2ERoomSoak(t *testing.T) {
	checkNoLeaks(t)
	const workers, rounds = 4, 25
	g := startGateway(t, "audio: {codec: opus}\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if code, _ := apiCall(t, "POST", base+"/v1/rooms", `{"name": "soak"}`); code != http.StatusCreated {
		t.Fatalf("create room: %d", code)
	}
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	var joined, left atomic.Int64
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var e web.Event
			_ = json.Unmarshal(b, &e)
			switch e.Type {
			case "room.joined":
				joined.Add(1)
			case "room.left":
				left.Add(1)
			}
		}
	}()
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	baseline := runtime.NumGoroutine()

	var endWait, playWait atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("%s/whip/soak/p%d", base, w)
			for i := 0; i < rounds; i++ {
				c, err := whipclient.Publish(ctx, url, "", fixtureVideo, fixtureAudio,
					whipclient.Options{LoopbackOnly: true, MaxDuration: 100 * time.Millisecond})
				if err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", w, i, err)
					return
				}
				// Someone watches each join; half the time the viewer
				// leaves first, half the time the stream ends under it.
				t1 := time.Now()
				v, err := whepclient.Play(ctx, strings.Replace(url, "/whip/", "/whep/", 1), "", whepclient.Options{LoopbackOnly: true})
				if err != nil {
					c.Close()
					errs <- fmt.Errorf("worker %d round %d: WHEP: %w", w, i, err)
					return
				}
				playWait.Add(int64(time.Since(t1)))
				if i%2 == 0 {
					err = errors.Join(v.Close(), c.Close())
				} else {
					err = c.Close()
					t0 := time.Now()
					<-v.Ended()
					endWait.Add(int64(time.Since(t0)))
					err = errors.Join(err, v.Close())
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d round %d: DELETE: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("mean WHEP connect %v, mean end-of-stream to viewer ended %v", time.Duration(playWait.Load()/100), time.Duration(endWait.Load()/50))
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "100 room.joined and 100 room.left", func() bool {
		return joined.Load() == workers*rounds && left.Load() == workers*rounds
	})
	http.DefaultClient.CloseIdleConnections()
	var now int
	deadline := time.Now().Add(5 * time.Second)
	for {
		now = runtime.NumGoroutine()
		if now <= baseline || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("soak: %d joins/leaves in %v (%.0f ms each, %d at a time); goroutines %d before, %d after",
		workers*rounds, elapsed.Round(time.Millisecond), float64(elapsed.Milliseconds())*workers/float64(workers*rounds), workers, baseline, now)
	if now > baseline {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines more than before the soak:\n%s", now-baseline, buf[:runtime.Stack(buf, true)])
	}
	if code, m := apiCall(t, "GET", base+"/v1/rooms/soak", ""); code != http.StatusOK || len(m["participants"].([]any)) != 0 {
		t.Fatalf("room after the soak: %d %v", code, m)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	<-counted
}
