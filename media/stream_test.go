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

// A skipping reader that falls behind is not dropped: it reads
// ErrReaderSkipped in place of what it had queued, then the next video
// keyframe and what follows; the publisher is asked for that keyframe; the
// skip and the frames it cost are counted under the reader's kind.
func TestSkippingReader(t *testing.T) {
	var asked int
	s := NewStream("a", testTracks(), func() { asked++ })
	r := s.SubscribeSkipping("transmux:cam", 4)
	defer r.Close()
	v, a := s.Tracks[0], s.Tracks[1]
	asked = 0
	// 0: keyframe, 1-3: deltas (queue full), 4: delta overflows it,
	// 5: audio and 6: delta wait for a keyframe, 7: keyframe, 8: audio.
	frames := []*Frame{
		{Track: v, DTS: 0, Keyframe: true}, {Track: v, DTS: 1}, {Track: v, DTS: 2}, {Track: v, DTS: 3},
		{Track: v, DTS: 4}, {Track: a, DTS: 5}, {Track: v, DTS: 6}, {Track: v, DTS: 7, Keyframe: true}, {Track: a, DTS: 8},
	}
	for _, f := range frames {
		s.Write(f)
	}
	if s.Readers() != 1 || s.Dropped() != 0 {
		t.Fatalf("readers %d, dropped %d: a skipping reader must stay", s.Readers(), s.Dropped())
	}
	if asked != 1 {
		t.Fatalf("%d keyframe requests at the skip, want 1", asked)
	}
	ctx := context.Background()
	if _, err := r.Read(ctx); !errors.Is(err, ErrReaderSkipped) {
		t.Fatalf("first read after the overflow: %v, want ErrReaderSkipped", err)
	}
	for _, want := range []int64{7, 8} {
		f, err := r.Read(ctx)
		if err != nil || f.DTS != want {
			t.Fatalf("after the skip: frame %v, %v; want DTS %d", f, err, want)
		}
	}
	c := s.Skips()["transmux"]
	// The four queued frames, the one that overflowed, the audio and the
	// delta before the keyframe.
	if c.Skips != 1 || c.Frames != 7 {
		t.Fatalf("skip counts %+v, want 1 skip of 7 frames", c)
	}
	s.Close()
	if _, err := r.Read(ctx); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("after the end: %v", err)
	}
}

// Without video, a skipping reader goes on with the frame that overflowed.
func TestSkippingReaderAudioOnly(t *testing.T) {
	s := NewStream("a", []*Track{{Kind: KindAudio, Codec: CodecOpus, ClockRate: 48000}}, nil)
	r := s.SubscribeSkipping("rtmp rtmp://x/y", 2)
	for i := range 3 {
		s.Write(&Frame{Track: s.Tracks[0], DTS: int64(i)})
	}
	if _, err := r.Read(context.Background()); !errors.Is(err, ErrReaderSkipped) {
		t.Fatalf("%v, want ErrReaderSkipped", err)
	}
	if f, err := r.Read(context.Background()); err != nil || f.DTS != 2 {
		t.Fatalf("after the skip: %v, %v; want DTS 2", f, err)
	}
	if c := s.Skips()["rtmp"]; c.Skips != 1 || c.Frames != 2 {
		t.Fatalf("skip counts %+v", c)
	}
}
