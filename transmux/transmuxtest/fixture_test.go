package transmuxtest

import (
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	fx, err := Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, f := range fx.VideoFrames {
		if f.Keyframe {
			keys++
		}
	}
	if len(fx.VideoFrames) != 300 || keys != 5 || !fx.VideoFrames[0].Keyframe || fx.VideoFrames[0].Config == nil {
		t.Fatalf("video: %d frames, %d keyframes", len(fx.VideoFrames), keys)
	}
	if fx.VideoFrames[60].Config != fx.VideoFrames[0].Config {
		t.Fatal("repeated SPS/PPS must keep the Config pointer")
	}
	if n := len(fx.AudioFrames); n < 490 || n > 510 {
		t.Fatalf("audio: %d frames", n)
	}
	if len(fx.Frames) != len(fx.VideoFrames)+len(fx.AudioFrames) {
		t.Fatal("interleave lost frames")
	}
}
