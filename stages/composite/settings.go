package composite

import (
	"fmt"
	"time"

	"github.com/whipcast/whipcast/rooms"
)

// Name is the participant slot a composite publishes in: {room}/composite.
// Rooms reserve it, so it never counts as a participant.
const Name = rooms.Composite

// Settings shape one composite. Zero values mean the defaults.
type Settings struct {
	// Layout is Grid (default) or Speaker.
	Layout string `json:"layout"`
	// Width and Height of the output picture. Default 1280x720.
	Width  int `json:"width"`
	Height int `json:"height"`
	// FPS is the output frame rate. Default 30.
	FPS int `json:"fps"`
	// VideoBitrate of the H.264 encoder in bits per second. Default 2500000.
	VideoBitrate int `json:"video_bitrate"`
	// AudioBitrate of the Opus encoder in bits per second. Default 96000.
	AudioBitrate int `json:"audio_bitrate"`
	// KeyframeInterval is the longest gap between IDRs. Default 2s.
	KeyframeInterval time.Duration `json:"-"`
	// Delay is how far behind capture time the output runs, so pictures and
	// sound that arrive with network jitter are still in time. Default 200ms.
	Delay time.Duration `json:"-"`
}

// Defaults of Settings.
const (
	DefaultWidth        = 1280
	DefaultHeight       = 720
	DefaultFPS          = 30
	DefaultVideoBitrate = 2500000
	DefaultAudioBitrate = 96000
	DefaultDelay        = 200 * time.Millisecond
)

// Over returns s with the fields o sets replacing s's: a request's settings
// over the configured defaults (rooms.composite). Width and height go
// together: o sets the size when it sets either. KeyframeInterval and Delay
// are not the API's to set and stay s's.
func (s Settings) Over(o Settings) Settings {
	if o.Layout != "" {
		s.Layout = o.Layout
	}
	if o.Width != 0 || o.Height != 0 {
		s.Width, s.Height = o.Width, o.Height
	}
	if o.FPS != 0 {
		s.FPS = o.FPS
	}
	if o.VideoBitrate != 0 {
		s.VideoBitrate = o.VideoBitrate
	}
	if o.AudioBitrate != 0 {
		s.AudioBitrate = o.AudioBitrate
	}
	return s
}

// Normalize fills the zero fields with the defaults and checks the ranges.
func (s *Settings) Normalize() error {
	if s.Layout == "" {
		s.Layout = Grid
	}
	if s.Width == 0 && s.Height == 0 {
		s.Width, s.Height = DefaultWidth, DefaultHeight
	}
	if s.FPS == 0 {
		s.FPS = DefaultFPS
	}
	if s.VideoBitrate == 0 {
		s.VideoBitrate = DefaultVideoBitrate
	}
	if s.AudioBitrate == 0 {
		s.AudioBitrate = DefaultAudioBitrate
	}
	if s.KeyframeInterval == 0 {
		s.KeyframeInterval = 2 * time.Second
	}
	if s.Delay == 0 {
		s.Delay = DefaultDelay
	}
	switch {
	case s.Layout != Grid && s.Layout != Speaker:
		return fmt.Errorf("%w: layout %q is not %q or %q", ErrBadSettings, s.Layout, Grid, Speaker)
	case s.Width < 64 || s.Height < 64 || s.Width > 3840 || s.Height > 2160 || s.Width%2+s.Height%2 != 0:
		return fmt.Errorf("%w: size %dx%d: width and height must be even, 64x64-3840x2160", ErrBadSettings, s.Width, s.Height)
	case s.FPS < 1 || s.FPS > 60:
		return fmt.Errorf("%w: fps %d is out of range 1-60", ErrBadSettings, s.FPS)
	case s.VideoBitrate < 100000 || s.VideoBitrate > 50000000:
		return fmt.Errorf("%w: video_bitrate %d is out of range 100k-50M", ErrBadSettings, s.VideoBitrate)
	case s.AudioBitrate < 16000 || s.AudioBitrate > 512000:
		return fmt.Errorf("%w: audio_bitrate %d is out of range 16k-512k", ErrBadSettings, s.AudioBitrate)
	case s.Delay < 20*time.Millisecond || s.Delay > 5*time.Second:
		return fmt.Errorf("%w: delay %s is out of range 20ms-5s", ErrBadSettings, s.Delay)
	}
	return nil
}
