//go:build !nocodec

package motion

import (
	"errors"
	"testing"

	"github.com/whipcast/whipcast/media"
)

// One detector per stream: a start without replace keeps the running one,
// a replace stops it first (its onDone runs), Stop and the end of the
// stream forget it, and nothing starts after Close.
func TestManager(t *testing.T) {
	m := NewManager()
	s := media.NewStream("cam", []*media.Track{{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}}, nil)
	done := make(chan string, 4)
	d1, err := m.Start(s, Settings{}, "first", false, func() { done <- "first" })
	if err != nil || d1 == nil {
		t.Fatalf("first start: %v, %v", d1, err)
	}
	if d, err := m.Start(s, Settings{}, "second", false, nil); d != nil || err != nil {
		t.Fatalf("a start without replace on a watched stream: %v, %v; want none", d, err)
	}
	if l, ok := m.Label(s); !ok || l != "first" {
		t.Fatalf("label %v %v", l, ok)
	}
	d3, err := m.Start(s, Settings{}, "third", true, func() { done <- "third" })
	if err != nil || d3 == nil {
		t.Fatalf("replace: %v, %v", d3, err)
	}
	if got := <-done; got != "first" {
		t.Fatalf("onDone of %q, want the replaced one", got)
	}
	if l, _ := m.Label(s); l != "third" || len(m.Labels()) != 1 {
		t.Fatalf("after the replace: label %v, %d running", l, len(m.Labels()))
	}
	s.Close() // the stream ends: its detector stops and is forgotten
	if got := <-done; got != "third" {
		t.Fatalf("onDone of %q at the stream's end", got)
	}
	if _, ok := m.Label(s); ok || m.Stop(s) {
		t.Fatal("an ended stream's detector is still known")
	}
	m.Close()
	s2 := media.NewStream("cam2", []*media.Track{{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}}, nil)
	if _, err := m.Start(s2, Settings{}, nil, false, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after Close: %v, want ErrClosed", err)
	}
	m.Close() // twice is fine
}
