package config

import "time"

// Rooms configures rooms: participants publish with WHIP to
// /whip/{room}/{participant} and watch each other with WHEP.
type Rooms struct {
	// Max is the most rooms that may exist at once; POST /v1/rooms past it
	// answers 409 room_limit. Default 100.
	Max int `yaml:"max"`
	// Grace is how long a room may stay empty before it ends, when POST
	// /v1/rooms gives none. Default 30s.
	Grace time.Duration `yaml:"grace"`
	// MaxComposites is how many rooms may have a composite at once (each
	// decodes every participant and encodes one picture stream); past it
	// PUT /v1/rooms/{room}/composite answers 409 composite_limit. Default 2.
	MaxComposites int `yaml:"max_composites"`
	// Composite holds the defaults of a composite; the API may override
	// each field per room.
	Composite Composite `yaml:"composite"`
}

// Composite shapes a room's composite stream {room}/composite.
type Composite struct {
	// Layout is grid (adapts to 1–9 participants) or speaker (the loudest
	// large, four others as thumbnails). Default grid.
	Layout string `yaml:"layout"`
	// Width and Height of the picture. Default 1280x720.
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// FPS is the frame rate. Default 30.
	FPS int `yaml:"fps"`
	// VideoBitrate of the H.264 encoder. Default 2500k.
	VideoBitrate Bitrate `yaml:"video_bitrate"`
	// AudioBitrate of the Opus encoder. Default 96k.
	AudioBitrate Bitrate `yaml:"audio_bitrate"`
	// Delay is how far behind capture the composite runs, so pictures and
	// sound delayed by network jitter still make it. Default 200ms.
	Delay time.Duration `yaml:"delay"`
}

func (c *Config) validateRooms(bad func(key, format string, a ...any)) {
	if c.Rooms.Max < 1 || c.Rooms.Max > 100000 {
		bad("rooms.max", "%d is out of range 1-100000", c.Rooms.Max)
	}
	if c.Rooms.Grace < time.Second || c.Rooms.Grace > 24*time.Hour {
		bad("rooms.grace", "%s is out of range 1s-24h", c.Rooms.Grace)
	}
	if c.Rooms.MaxComposites < 0 || c.Rooms.MaxComposites > 1000 {
		bad("rooms.max_composites", "%d is out of range 0-1000", c.Rooms.MaxComposites)
	}
	k := c.Rooms.Composite
	switch {
	case k.Layout != "grid" && k.Layout != "speaker":
		bad("rooms.composite.layout", "%q is not grid or speaker", k.Layout)
	case k.Width < 64 || k.Height < 64 || k.Width > 3840 || k.Height > 2160 || k.Width%2+k.Height%2 != 0:
		bad("rooms.composite.width", "%dx%d: width and height must be even, 64x64-3840x2160", k.Width, k.Height)
	case k.FPS < 1 || k.FPS > 60:
		bad("rooms.composite.fps", "%d is out of range 1-60", k.FPS)
	case k.VideoBitrate < 100000 || k.VideoBitrate > 50000000:
		bad("rooms.composite.video_bitrate", "%d is out of range 100k-50M", k.VideoBitrate)
	case k.AudioBitrate < 16000 || k.AudioBitrate > 512000:
		bad("rooms.composite.audio_bitrate", "%d is out of range 16k-512k", k.AudioBitrate)
	case k.Delay < 20*time.Millisecond || k.Delay > 5*time.Second:
		bad("rooms.composite.delay", "%s is out of range 20ms-5s", k.Delay)
	}
}
