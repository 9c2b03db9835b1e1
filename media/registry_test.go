package media

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// stateLog records OnStateChange calls.
type stateLog struct {
	mu  sync.Mutex
	got []State
}

func (l *stateLog) add(_ *Stream, st State) {
	l.mu.Lock()
	l.got = append(l.got, st)
	l.mu.Unlock()
}

func (l *stateLog) states() []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]State(nil), l.got...)
}

func ended(s *Stream) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// A held stream keeps its name, its readers and its outputs; a Publish of
// the name resumes the same Stream without OnPublish, and the frames after
// the resume are marked Discontinuity, video from a keyframe on.
func TestRegistryHoldResume(t *testing.T) {
	g := NewRegistryWith(RegistrySettings{ReconnectWindow: time.Hour})
	defer g.Close()
	published := 0
	g.OnPublish(func(*Stream) { published++ })
	var states stateLog
	g.OnStateChange(states.add)

	kf1 := 0
	s, err := g.Publish("cam", testTracks(), func() { kf1++ })
	if err != nil {
		t.Fatal(err)
	}
	r := s.Subscribe("out", 64)
	defer r.Close()
	s.Write(&Frame{Track: s.Tracks[0], DTS: 90000, Keyframe: true})
	s.Write(&Frame{Track: s.Tracks[1], DTS: 48000 + 960})
	g.Hold(s, "connection failed")

	if ended(s) {
		t.Fatal("held stream ended")
	}
	if got, ok := g.Get("cam"); !ok || got != s {
		t.Fatal("held stream not found by name")
	}
	if st, _, reason := s.State(); st != StateInterrupted || reason != "connection failed" {
		t.Fatalf("state %v %q, want interrupted with the reason", st, reason)
	}
	s.RequestKeyframe() // a reader while held: the old publisher is not asked
	if kf1 != 1 {       // 1: the Subscribe above
		t.Fatalf("old publisher asked %d times for keyframes", kf1)
	}

	kf2 := 0
	tracks := testTracks()
	s2, err := g.Publish("cam", tracks, func() { kf2++ })
	if err != nil {
		t.Fatal(err)
	}
	if s2 != s {
		t.Fatal("resume returned a new stream")
	}
	if published != 1 {
		t.Fatalf("OnPublish called %d times, want 1", published)
	}
	if st, _, _ := s.State(); st != StateLive || s.Resumes() != 1 {
		t.Fatalf("after resume: state %v, resumes %d", st, s.Resumes())
	}
	if got := states.states(); len(got) != 2 || got[0] != StateInterrupted || got[1] != StateLive {
		t.Fatalf("state changes %v", got)
	}
	s.RequestKeyframe()
	if kf2 != 1 {
		t.Fatal("keyframe request did not reach the new publisher")
	}
	// The resumed timeline starts after the last frame (1.02 s on audio).
	origin, ok := s.ResumeOrigin()
	if !ok {
		t.Fatal("no resume origin")
	}
	if d := time.Since(origin); d <= 1020*time.Millisecond {
		t.Fatalf("resumed timeline at %v, not after the last frame", d)
	}

	s.Write(&Frame{Track: s.Tracks[1], DTS: 100000})
	s.Write(&Frame{Track: s.Tracks[0], DTS: 200000})                 // not a keyframe: dropped
	s.Write(&Frame{Track: s.Tracks[0], DTS: 203000, Keyframe: true}) // first video
	s.Write(&Frame{Track: s.Tracks[0], DTS: 206000})
	s.Write(&Frame{Track: s.Tracks[1], DTS: 100960})
	want := []struct {
		dts  int64
		disc bool
	}{{90000, false}, {48960, false}, {100000, true}, {203000, true}, {206000, false}, {100960, false}}
	for i, w := range want {
		f, err := r.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if f.DTS != w.dts || f.Discontinuity != w.disc {
			t.Fatalf("frame %d: DTS %d disc %v, want %d %v", i, f.DTS, f.Discontinuity, w.dts, w.disc)
		}
	}
	if r.Len() != 0 {
		t.Fatalf("%d frames left; the non-keyframe should have been dropped", r.Len())
	}
}

// A second publisher of a live name is refused; so is one of a held name
// once it has been resumed.
func TestRegistryBusy(t *testing.T) {
	g := NewRegistryWith(RegistrySettings{ReconnectWindow: time.Hour})
	defer g.Close()
	s, err := g.Publish("cam", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Publish("cam", testTracks(), nil); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("second publisher: %v, want ErrStreamBusy", err)
	}
	g.Hold(s, "gone")
	if _, err := g.Publish("cam", testTracks(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Publish("cam", testTracks(), nil); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("publisher of a resumed name: %v, want ErrStreamBusy", err)
	}
}

// With other tracks the held stream ends and a new one is published.
func TestRegistryResumeTracksMismatch(t *testing.T) {
	g := NewRegistryWith(RegistrySettings{ReconnectWindow: time.Hour})
	defer g.Close()
	published := 0
	g.OnPublish(func(*Stream) { published++ })
	s, _ := g.Publish("cam", testTracks(), nil)
	g.Hold(s, "gone")
	audioOnly := []*Track{{Kind: KindAudio, Codec: CodecOpus, ClockRate: 48000, Channels: 2}}
	s2, err := g.Publish("cam", audioOnly, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2 == s || !ended(s) {
		t.Fatal("held stream with other tracks was not replaced")
	}
	if published != 2 {
		t.Fatalf("OnPublish called %d times, want 2", published)
	}
	if _, ok := s2.ResumeOrigin(); ok {
		t.Fatal("a new stream has a resume origin")
	}
}

// When the window passes the held stream ends as Unpublish ends it, and the
// name is free.
func TestRegistryHoldExpires(t *testing.T) {
	g := NewRegistryWith(RegistrySettings{ReconnectWindow: 10 * time.Millisecond})
	defer g.Close()
	s, _ := g.Publish("cam", testTracks(), nil)
	r := s.Subscribe("out", 4)
	g.Hold(s, "gone")
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("held stream never ended")
	}
	if _, err := r.Read(context.Background()); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("reader after expiry: %v", err)
	}
	if _, ok := g.Get("cam"); ok {
		t.Fatal("expired stream still registered")
	}
	s2, err := g.Publish("cam", testTracks(), nil)
	if err != nil || s2 == s {
		t.Fatalf("publish after expiry: %v (same stream %v)", err, s2 == s)
	}
}

// Without a window Hold is Unpublish; Unpublish of a held stream ends it at
// once.
func TestRegistryHoldNoWindowAndUnpublish(t *testing.T) {
	g := NewRegistry()
	s, _ := g.Publish("cam", testTracks(), nil)
	g.Hold(s, "gone")
	if !ended(s) {
		t.Fatal("Hold without a window did not end the stream")
	}
	g.Close()

	g = NewRegistryWith(RegistrySettings{ReconnectWindow: time.Hour})
	defer g.Close()
	s, _ = g.Publish("cam", testTracks(), nil)
	g.Hold(s, "gone")
	g.Hold(s, "again") // no-op
	g.Unpublish(s)
	if !ended(s) {
		t.Fatal("Unpublish of a held stream did not end it")
	}
	if _, ok := g.Get("cam"); ok {
		t.Fatal("name still taken")
	}
}

// Close ends held streams with the live ones and stops their timers.
func TestRegistryCloseDuringHold(t *testing.T) {
	g := NewRegistryWith(RegistrySettings{ReconnectWindow: time.Hour})
	held, _ := g.Publish("a", testTracks(), nil)
	live, _ := g.Publish("b", testTracks(), nil)
	g.Hold(held, "gone")
	g.Close()
	if !ended(held) || !ended(live) {
		t.Fatal("Close left a stream open")
	}
	if len(g.held) != 0 {
		t.Fatal("Close left a hold timer")
	}
	// Hold after Close ends the stream rather than arming a timer.
	s := NewStream("c", testTracks(), nil)
	g.Hold(s, "late")
	if !ended(s) {
		t.Fatal("Hold after Close did not end the stream")
	}
}

// TestRegistryClaimAnnounce: a claimed stream takes its name but is private
// (no Get, no List, no OnPublish) until Announce, which runs the listeners
// before the stream is public; one unpublished before Announce tells no
// one, and Hold of it frees the name instead of holding it. Await waits for
// a claimed name to go public or away.
func TestRegistryClaimAnnounce(t *testing.T) {
	g := NewRegistryWith(RegistrySettings{ReconnectWindow: time.Hour})
	defer g.Close()
	var seen []string
	var visibleInListener bool
	g.OnPublish(func(s *Stream) {
		seen = append(seen, s.Name)
		_, visibleInListener = g.Get(s.Name)
	})
	s, err := g.Claim("cam", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Claim("cam", testTracks(), nil); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("second claim: %v, want ErrStreamBusy", err)
	}
	if _, ok := g.Get("cam"); ok || len(g.List()) != 0 || len(seen) != 0 {
		t.Fatalf("claimed stream public: Get %v, List %d, listeners %v", ok, len(g.List()), seen)
	}
	got := make(chan bool, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		x, ok := g.Await(ctx, "cam")
		got <- ok && x == s
	}()
	g.Announce(s)
	g.Announce(s) // once only
	if !<-got {
		t.Fatal("Await did not return the announced stream")
	}
	if len(seen) != 1 || visibleInListener {
		t.Fatalf("listeners %v, stream visible to them before they ran: %v", seen, visibleInListener)
	}
	if x, ok := g.Get("cam"); !ok || x != s || len(g.List()) != 1 {
		t.Fatal("announced stream not public")
	}

	// Claimed, then gone before any media: nobody hears of it, the name is
	// free at once (no reconnect window for what was never published), and
	// a waiting Await returns.
	q, err := g.Claim("quiet", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, ok := g.Await(ctx, "quiet")
		got <- ok
	}()
	g.Hold(q, "gone")
	if <-got {
		t.Fatal("Await found a stream that ended before its first frame")
	}
	if !ended(q) || len(seen) != 1 {
		t.Fatalf("ended %v, listeners %v", ended(q), seen)
	}
	if _, err := g.Claim("quiet", testTracks(), nil); err != nil {
		t.Fatalf("name of a stream that never went public: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, ok := g.Await(ctx, "nobody"); ok {
		t.Fatal("Await of an unclaimed name")
	}
}
