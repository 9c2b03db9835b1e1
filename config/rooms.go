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
}

func (c *Config) validateRooms(bad func(key, format string, a ...any)) {
	if c.Rooms.Max < 1 || c.Rooms.Max > 100000 {
		bad("rooms.max", "%d is out of range 1-100000", c.Rooms.Max)
	}
	if c.Rooms.Grace < time.Second || c.Rooms.Grace > 24*time.Hour {
		bad("rooms.grace", "%s is out of range 1s-24h", c.Rooms.Grace)
	}
}
