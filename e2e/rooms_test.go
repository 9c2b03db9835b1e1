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

	"github.com/whipcast/whipcast/internal/gateway"
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
	// Not before its grace; the upper bound only says it was the grace
	// that ended it (a busy machine may deliver the event late).
	if d := time.Since(left); d < 1400*time.Millisecond || d > 15*time.Second {
		t.Errorf("room ended %v after the last leave, want its 1.5s grace", d)
	}
	if code, _ := apiCall(t, "GET", base+"/v1/rooms/studio", ""); code != http.StatusNotFound {
		t.Fatalf("GET ended room: %d", code)
	}
}

// TestE2ERoomSoak joins and leaves a room 200 times (a publish, a WHEP
// viewer, then the leave), eight participants at a time, and checks that
// every join and leave was announced and that neither goroutines nor heap
// grow. Every fourth round joins over the room socket (publish over the
// socket, leave by closing it) instead of WHIP POST and DELETE.
func TestE2ERoomSoak(t *testing.T) {
	checkNoLeaks(t)
	const workers, rounds = 8, 25
	// heapSlack is the heap growth allowed over the soak: far above what a
	// leak-free run shows (a few MiB of pools and caches), far below what
	// 200 leaked PeerConnections would hold.
	const heapSlack = 20 << 20
	g := startGateway(t, "audio: {codec: opus}\n")
	base := "http://" + g.HTTPAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
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
	heapBefore := heapInuse()

	var endWait, endCount, playWait, publicWait atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("%s/whip/soak/p%d", base, w)
			var err error
			for i := 0; i < rounds; i++ {
				// The publisher sends until the round ends it, as a real one
				// does: with only its first 100 ms sent, a publish whose first
				// packets the gateway did not get (seen once in 400 rounds
				// with two suites at once) never had a frame at all.
				popts := whipclient.Options{LoopbackOnly: true}
				var leave func()
				if i%4 == 3 {
					leave, err = soakSocket(ctx, base, fmt.Sprintf("p%d", w), &popts)
					if err != nil {
						errs <- fmt.Errorf("worker %d round %d: room socket: %w", w, i, err)
						return
					}
				}
				c, err := whipclient.Publish(ctx, url, "", fixtureVideo, fixtureAudio, popts)
				if err != nil {
					if leave != nil {
						leave()
					}
					errs <- fmt.Errorf("worker %d round %d: %w", w, i, err)
					return
				}
				// Someone watches each join; the viewer leaves first or the
				// stream ends under it (a DELETE or the socket closing). It
				// comes once the stream is public (its first frame in), as a
				// viewer sent a link by the room's events would: a publisher
				// that connected is not yet one whose media arrived, and on a
				// busy machine the gateway's own wait for that (5 s) can pass.
				abort := func(err error) {
					if leave != nil {
						leave()
					}
					c.Close()
					errs <- fmt.Errorf("worker %d round %d: %w", w, i, err)
				}
				t1 := time.Now()
				if err := awaitPublic(ctx, g, fmt.Sprintf("soak/p%d", w)); err != nil {
					abort(err)
					return
				}
				publicWait.Add(int64(time.Since(t1)))
				t1 = time.Now()
				v, err := whepclient.Play(ctx, strings.Replace(url, "/whip/", "/whep/", 1), "", whepclient.Options{LoopbackOnly: true})
				if err != nil {
					abort(fmt.Errorf("WHEP: %w", err))
					return
				}
				playWait.Add(int64(time.Since(t1)))
				switch {
				case leave != nil:
					leave() // closing the socket ends the publish
					t0 := time.Now()
					err = waitEnded(v)
					endWait.Add(int64(time.Since(t0)))
					endCount.Add(1)
					err = errors.Join(err, v.Close(), c.Close())
				case i%2 == 0:
					err = errors.Join(v.Close(), c.Close())
				default:
					err = c.Close()
					t0 := time.Now()
					err = errors.Join(err, waitEnded(v))
					endWait.Add(int64(time.Since(t0)))
					endCount.Add(1)
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
	t.Logf("mean publish connected to stream public %v, mean WHEP connect %v, mean end-of-stream to viewer ended %v",
		time.Duration(publicWait.Load()/(workers*rounds)), time.Duration(playWait.Load()/(workers*rounds)), time.Duration(endWait.Load()/max(endCount.Load(), 1)))
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a room.joined and a room.left per round", func() bool {
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
	heapAfter := heapInuse()
	t.Logf("soak: %d joins/leaves in %v (%.0f ms each, %d at a time); goroutines %d before, %d after; heap in use %.1f MiB before, %.1f MiB after (%+.1f MiB)",
		workers*rounds, elapsed.Round(time.Millisecond), float64(elapsed.Milliseconds())*workers/float64(workers*rounds), workers, baseline, now,
		mib(heapBefore), mib(heapAfter), mib(heapAfter)-mib(heapBefore))
	if heapAfter > heapBefore+heapSlack {
		t.Errorf("heap grew by %.1f MiB over the soak, more than %d MiB", mib(heapAfter)-mib(heapBefore), heapSlack>>20)
	}
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

// soakSocket opens the room socket for participant of room "soak" and
// points popts' signalling at it. Once the answer is in, a reader drops the
// server's later messages until the socket closes. leave closes the socket
// (the participant's leave) and waits for that reader.
func soakSocket(ctx context.Context, base, participant string, popts *whipclient.Options) (leave func(), err error) {
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/v1/rooms/soak/ws?participant="+participant, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	var reader sync.WaitGroup
	popts.Signal = func(ctx context.Context, offer string) (string, error) {
		b, _ := json.Marshal(map[string]string{"type": "publish", "sdp": offer})
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			return "", err
		}
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return "", err
			}
			var m struct{ Type, SDP, Message string }
			_ = json.Unmarshal(b, &m)
			switch m.Type {
			case "answer":
				reader.Add(1)
				go func() {
					defer reader.Done()
					for {
						if _, _, err := ws.Read(context.Background()); err != nil {
							return
						}
					}
				}()
				return m.SDP, nil
			case "error":
				return "", errors.New(m.Message)
			}
		}
	}
	return func() {
		ws.Close(websocket.StatusNormalClosure, "")
		ws.CloseNow()
		reader.Wait()
	}, nil
}

// awaitPublic waits, boundedly, for stream to be public in g's registry
// (announced: its first frame written).
func awaitPublic(ctx context.Context, g *gateway.Gateway, stream string) error {
	const bound = 30 * time.Second
	deadline := time.Now().Add(bound)
	for {
		if _, ok := g.Registry.Get(stream); ok {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s connected but not public (no frame in) within %v", stream, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEnded waits, boundedly, for a viewer to see its stream end.
func waitEnded(v *whepclient.Client) error {
	select {
	case <-v.Ended():
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the viewer outlived the stream")
	}
}

// heapInuse is the live heap after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
