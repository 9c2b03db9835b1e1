package composite

import (
	"testing"
	"time"
)

// Over: a request's fields replace the defaults it sets, the size as a
// pair; what only the config sets stays.
func TestSettingsOver(t *testing.T) {
	def := Settings{Layout: Grid, Width: 1280, Height: 720, FPS: 30, VideoBitrate: 2500000, AudioBitrate: 96000,
		KeyframeInterval: 2 * time.Second, Delay: 300 * time.Millisecond}
	got := def.Over(Settings{Layout: Speaker, Width: 640, FPS: 15, Delay: time.Second})
	want := Settings{Layout: Speaker, Width: 640, Height: 0, FPS: 15, VideoBitrate: 2500000, AudioBitrate: 96000,
		KeyframeInterval: 2 * time.Second, Delay: 300 * time.Millisecond}
	if got != want {
		t.Fatalf("Over = %+v\nwant  %+v", got, want)
	}
	if err := got.Normalize(); err == nil {
		t.Fatal("a width without a height must not normalize") // 640x0
	}
	if got := def.Over(Settings{}); got != def {
		t.Fatalf("an empty request changed the defaults: %+v", got)
	}
}
