package media

import (
	"context"
	"errors"
	"testing"
	"time"
)

func testTracks() []*Track {
	return []*Track{
		{Kind: KindVideo, Codec: CodecH264, ClockRate: 90000},
		{Kind: KindAudio, Codec: CodecOpus, ClockRate: 48000, Channels: 2},
	}
}

func TestStreamFanOutInOrder(t *testing.T) {
	s := NewStream("a", testTracks(), nil)
	r1 := s.Subscribe("r1", 16)
	r2 := s.Subscribe("r2", 16)
	for i := range 10 {
		s.Write(&Frame{Track: s.Tracks[0], DTS: int64(i) * 3000})
	}
	s.Close()
	for _, r := range []*Reader{r1, r2} {
		for i := range 10 {
			f, err := r.Read(context.Background())
			if err != nil {
				t.Fatalf("%s frame %d: %v", r.Name, i, err)
			}
			if f.DTS != int64(i)*3000 {
				t.Fatalf("%s frame %d: DTS %d", r.Name, i, f.DTS)
			}
		}
		if _, err := r.Read(context.Background()); !errors.Is(err, ErrStreamEnded) {
			t.Fatalf("%s after end: %v, want ErrStreamEnded", r.Name, err)
		}
	}
}

// A reader that never reads must be dropped without slowing the writer or the
// other readers.
func TestSlowReaderDropped(t *testing.T) {
	s := NewStream("a", testTracks(), nil)
	slow := s.Subscribe("slow", 4)
	fast := s.Subscribe("fast", 64)
	done := make(chan struct{})
	got := 0
	go func() {
		defer close(done)
		for {
			if _, err := fast.Read(context.Background()); err != nil {
				return
			}
			got++
		}
	}()
	for i := range 50 {
		s.Write(&Frame{Track: s.Tracks[1], DTS: int64(i) * 960})
		time.Sleep(100 * time.Microsecond)
	}
	if n := s.Readers(); n != 1 {
		t.Fatalf("readers after overflow: %d, want 1 (slow one dropped)", n)
	}
	if _, err := slow.Read(context.Background()); !errors.Is(err, ErrReaderTooSlow) {
		t.Fatalf("slow reader: %v, want ErrReaderTooSlow", err)
	}
	s.Close()
	<-done
	if got != 50 {
		t.Fatalf("fast reader got %d frames, want 50", got)
	}
}

func TestReaderCloseAndCtx(t *testing.T) {
	s := NewStream("a", testTracks(), nil)
	r := s.Subscribe("r", 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := r.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read with expired ctx: %v", err)
	}
	r.Close()
	r.Close()
	if _, err := r.Read(context.Background()); !errors.Is(err, ErrReaderClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if s.Readers() != 0 {
		t.Fatal("reader still attached after Close")
	}
	// Subscribing to an ended stream gives a reader that ends at once.
	s.Close()
	if _, err := s.Subscribe("late", 1).Read(context.Background()); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("late reader: %v", err)
	}
}

func TestSubscribeRequestsKeyframe(t *testing.T) {
	n := 0
	s := NewStream("a", testTracks(), func() { n++ })
	s.Subscribe("r", 1)
	if n != 1 {
		t.Fatalf("keyframe requests %d, want 1", n)
	}
}

func TestRegistry(t *testing.T) {
	g := NewRegistry()
	var seen []string
	g.OnPublish(func(s *Stream) { seen = append(seen, s.Name) })
	s, err := g.Publish("live/cam1", testTracks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Publish("live/cam1", testTracks(), nil); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("second publish: %v, want ErrStreamBusy", err)
	}
	if _, err := g.Publish("../etc", testTracks(), nil); !errors.Is(err, ErrBadName) {
		t.Fatalf("bad name: %v, want ErrBadName", err)
	}
	if got, ok := g.Get("live/cam1"); !ok || got != s {
		t.Fatal("Get did not find the stream")
	}
	g.Unpublish(s)
	g.Unpublish(s)
	select {
	case <-s.Done():
	default:
		t.Fatal("stream not closed by Unpublish")
	}
	if _, err := g.Publish("live/cam1", testTracks(), nil); err != nil {
		t.Fatalf("republish after leave: %v", err)
	}
	if len(seen) != 2 {
		t.Fatalf("listeners saw %v", seen)
	}
	g.Close()
	if _, err := g.Publish("x", testTracks(), nil); !errors.Is(err, ErrRegistryClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'a'
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"cam1", true},
		{"room-1/alice_2", true},
		{"A/b/C/d", true},
		{string(long[:64]), true},
		{"", false},
		{string(long), false},
		{"..", false},
		{"a/../b", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"a b", false},
		{"a%2Fb", false},
		{"a\\b", false},
		{"é", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateName(tc.name)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadName) {
				t.Fatalf("error %v does not wrap ErrBadName", err)
			}
		})
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"cam", "a/b", "../x", "a//b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateName(s) != nil {
			return
		}
		// Whatever passes must be safe as a storage key and URL path.
		for _, bad := range []string{"..", "//", "\\", "%", " ", "\x00"} {
			if contains(s, bad) {
				t.Fatalf("accepted %q containing %q", s, bad)
			}
		}
		if s[0] == '/' || s[len(s)-1] == '/' {
			t.Fatalf("accepted %q with outer slash", s)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// BenchmarkStreamFanOut is one frame written and taken by each of three
// readers (HLS/DASH transmux, RTMP, recorder): the hub's cost per frame.
func BenchmarkStreamFanOut(b *testing.B) {
	s := NewStream("a", testTracks(), nil)
	readers := []*Reader{s.Subscribe("r1", 4), s.Subscribe("r2", 4), s.Subscribe("r3", 4)}
	f := &Frame{Track: s.Tracks[0], Data: make([]byte, 1200)}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(f.Data)))
	for b.Loop() {
		s.Write(f)
		for _, r := range readers {
			if _, err := r.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	s.Close()
}
