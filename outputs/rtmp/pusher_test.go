package rtmp

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
)

// fakeClock hands out timers that fire only when the test says so.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	waits  []time.Duration
	timers chan chan time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers <- ch
	return ch
}

type fakeConn struct {
	mu   sync.Mutex
	msgs []message
	fail error
}

func (c *fakeConn) writeMetadata(map[string]any) error { return nil }
func (c *fakeConn) write(m message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.msgs = append(c.msgs, m)
	return nil
}
func (c *fakeConn) err() error   { return nil }
func (c *fakeConn) Close() error { return nil }

// TestPusherStatesAndBackoff: refused three times (retrying, with the capped
// exponential schedule), then live; the key never shows; the end of the
// stream stops the pusher.
func TestPusherStatesAndBackoff(t *testing.T) {
	v := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	src := media.NewStream("s", []*media.Track{v}, nil)
	clock := &fakeClock{now: time.Unix(0, 0), timers: make(chan chan time.Time)}
	var mu sync.Mutex
	var states []string
	dials := 0
	fc := &fakeConn{}
	p, err := New(src, Settings{
		URL:     "rtmp://example.com/live/sup3rs3cret",
		Backoff: Backoff{Min: time.Second, Max: 3 * time.Second},
		Clock:   clock,
		Rand:    func() float64 { return 0 },
		OnState: func(s Status) {
			mu.Lock()
			states = append(states, s.State.String()+"|"+s.LastError)
			mu.Unlock()
		},
		dial: func(ctx context.Context, tg Target, s *Settings) (conn, error) {
			dials++
			if dials <= 3 {
				return nil, errors.New("connection refused")
			}
			return fc, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	defer p.Close()
	for range 3 {
		select {
		case ch := <-clock.timers:
			ch <- time.Time{}
		case <-time.After(5 * time.Second):
			t.Fatal("no backoff timer")
		}
	}
	cfg := &media.Config{SPS: []byte{0x67, 0x42, 0, 0x1F}, PPS: []byte{0x68}}
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().State != StateLive && time.Now().Before(deadline) {
		src.Write(&media.Frame{Track: v, DTS: 0, PTS: 0, Keyframe: true, Config: cfg, Data: []byte{0, 0, 0, 1, 0x65}})
		time.Sleep(10 * time.Millisecond)
	}
	st := p.Status()
	if st.State != StateLive || st.Connects != 1 {
		t.Fatalf("status %+v, want live after one connect", st)
	}
	if st.URL != "rtmp://example.com:1935/live/****" || strings.Contains(st.LastError, "sup3rs3cret") {
		t.Errorf("status shows %q / %q", st.URL, st.LastError)
	}
	clock.mu.Lock()
	waits := clock.waits
	clock.mu.Unlock()
	if len(waits) != 3 || waits[0] != time.Second || waits[1] != 2*time.Second || waits[2] != 3*time.Second {
		t.Errorf("backoff waits %v, want [1s 2s 3s]", waits)
	}
	src.Close()
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("pusher did not stop with its stream")
	}
	mu.Lock()
	defer mu.Unlock()
	want := "retrying|connection refused,live|connection refused,stopped|connection refused"
	if got := strings.Join(states, ","); got != want {
		t.Errorf("states %s\nwant %s", got, want)
	}
}

// blockingConn stalls every write until release is closed, like a TCP peer
// that stopped reading.
type blockingConn struct {
	fakeConn
	release chan struct{}
}

func (c *blockingConn) write(m message) error {
	<-c.release
	return c.fakeConn.write(m)
}

// TestPusherStuckPeer: a stuck server never blocks the stream's writer; the
// pusher, dropped as too slow, skips to the next keyframe and starts it with
// a sequence header.
func TestPusherStuckPeer(t *testing.T) {
	v := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	src := media.NewStream("s", []*media.Track{v}, nil)
	bc := &blockingConn{release: make(chan struct{})}
	p, err := New(src, Settings{
		URL:      "rtmp://example.com/live/key",
		QueueLen: 8,
		dial:     func(context.Context, Target, *Settings) (conn, error) { return bc, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	defer p.Close()
	other := src.Subscribe("other", 1000)
	defer other.Close()
	cfg := &media.Config{SPS: []byte{0x67, 0x42, 0, 0x1F}, PPS: []byte{0x68}}
	frame := func(i int) *media.Frame {
		return &media.Frame{Track: v, DTS: int64(i) * 3000, PTS: int64(i) * 3000, Keyframe: i%30 == 0, Config: cfg, Data: []byte{0, 0, 0, 1, 0x41}}
	}
	src.Write(frame(0))
	time.Sleep(50 * time.Millisecond) // the pusher is now stuck in its first write
	// The output stays stuck until bc.release: writes that waited for it
	// would never end, so a generous bound tells blocking from slow.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := 1; i < 100; i++ {
			src.Write(frame(i))
		}
	}()
	select {
	case <-wrote:
	case <-time.After(15 * time.Second):
		t.Fatal("writing 100 frames past a stuck output blocked")
	}
	if other.Len() != 100 {
		t.Errorf("the other reader has %d of 100 frames", other.Len())
	}
	close(bc.release)
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().Resyncs == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p.Status().Resyncs == 0 {
		t.Fatal("pusher never skipped ahead")
	}
	for i := 100; i < 200; i++ {
		src.Write(frame(i))
		time.Sleep(time.Millisecond)
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	// After the first sequence header and its keyframe, the next sequence
	// header (after the resync) must be followed by a keyframe.
	seqs := 0
	for i, m := range bc.msgs {
		if m.body[1] == 0 {
			seqs++
			if i+1 >= len(bc.msgs) || bc.msgs[i+1].body[0]>>4 != 1 {
				t.Errorf("sequence header %d not followed by a keyframe", seqs)
			}
		}
	}
	if seqs < 2 {
		t.Errorf("%d sequence headers, want a fresh one after the resync", seqs)
	}
}

// TestDialSilentServer: a server that accepts TCP and never answers the
// handshake fails the dial after Timeout, and the handshake goroutine ends.
func TestDialSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	before := runtime.NumGoroutine()
	tg, _ := ParseURL("rtmp://" + ln.Addr().String() + "/live/key")
	start := time.Now()
	_, err = dialRTMP(context.Background(), tg, &Settings{Timeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("dial: %v, want ErrTimeout", err)
	}
	// Far above the 300 ms timeout: only a dial that ignored it fails.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("dial took %v", d)
	}
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left after a timed-out handshake", n-before)
	}
	ln.Close()
	for c := range accepted {
		c.Close()
	}
}

// TestPusherMaxRetries: a server that drops every connection (a stream key
// refused for good) gets the first attempt and MaxRetries reconnects, no
// more; the destination then stays failed with the last error, and the
// pusher ends without its stream ending.
func TestPusherMaxRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	v := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	src := media.NewStream("s", []*media.Track{v}, nil)
	defer src.Close()
	clock := &fakeClock{now: time.Unix(0, 0), timers: make(chan chan time.Time)}
	p, err := New(src, Settings{
		URL:        "rtmp://" + ln.Addr().String() + "/live/refusedkey",
		Backoff:    Backoff{Min: time.Second, Max: 3 * time.Second},
		MaxRetries: 2,
		Clock:      clock,
		Rand:       func() float64 { return 0 },
		Timeout:    5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	defer p.Close()
	for range 2 {
		select {
		case ch := <-clock.timers:
			ch <- time.Time{}
		case <-time.After(10 * time.Second):
			t.Fatal("no backoff timer")
		}
	}
	select {
	case <-p.Done():
	case ch := <-clock.timers:
		ch <- time.Time{}
		t.Fatal("a third reconnect was scheduled past max_retries 2")
	case <-time.After(20 * time.Second):
		t.Fatal("the pusher did not end after its retries")
	}
	st := p.Status()
	if st.State != StateFailed || st.LastError == "" || st.Connects != 0 {
		t.Fatalf("status %+v, want failed with the last error, never connected", st)
	}
	// The server counts a connection just after closing it, so the last
	// one may be counted a moment after the pusher has seen it fail.
	for i := range 3 {
		select {
		case <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d connections, want 3 (the first attempt and 2 retries)", i)
		}
	}
	if n := len(accepted); n != 0 {
		t.Errorf("%d connections more than the first attempt and 2 retries", n)
	}
}
