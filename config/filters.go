package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FilterStages bounds and shapes the filter stages (`streams[].filters`).
type FilterStages struct {
	// MaxStages is how many streams may be filtered at once; each decodes
	// and encodes its video. A publish past it runs unfiltered and the
	// error names this key. Default 8.
	MaxStages int `yaml:"max_stages"`
	// Bitrate of the H.264 encoder of filtered streams. Default 1500k.
	Bitrate Bitrate `yaml:"bitrate"`
}

// Filter is one `streams[].filters` entry: a mapping with exactly one of
// the keys rotate, scale, crop, text, image, gain.
type Filter struct {
	// Rotate is 90, 180 or 270 (clockwise).
	Rotate int
	// ScaleWidth and ScaleHeight come from scale: "WIDTHxHEIGHT".
	ScaleWidth, ScaleHeight int
	// Crop is {x, y, width, height}.
	Crop *FilterCrop
	// Text is {title, clock, size}.
	Text *FilterText
	// Image is {path, x, y}.
	Image *FilterImage
	// Gain multiplies the audio volume (0–10).
	Gain float64
	kind string
}

// FilterCrop is the rectangle a crop filter keeps.
type FilterCrop struct {
	X      int `yaml:"x"`
	Y      int `yaml:"y"`
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
}

// FilterText is a text overlay: a title at the top left and/or the clock at
// the bottom left.
type FilterText struct {
	Title string `yaml:"title"`
	Clock bool   `yaml:"clock"`
	// Size is the font size in pixels. Default 24.
	Size int `yaml:"size"`
}

// FilterImage overlays an image file; negative x/y count from the right and
// bottom edges.
type FilterImage struct {
	Path string `yaml:"path"`
	X    int    `yaml:"x"`
	Y    int    `yaml:"y"`
}

// Kind is the entry's key: rotate, scale, crop, text, image or gain.
func (f Filter) Kind() string { return f.kind }

// UnmarshalYAML implements yaml.Unmarshaler, strictly: one known key.
func (f *Filter) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return fmt.Errorf("line %d: a filter is a mapping with one key: rotate, scale, crop, text, image or gain", n.Line)
	}
	k, v := n.Content[0], n.Content[1]
	out := Filter{kind: k.Value}
	strict := func(dst any) error {
		// Decode through a KnownFields decoder so misspelt keys are refused.
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf("line %d: %s: %w", k.Line, k.Value, err)
		}
		return nil
	}
	var err error
	switch k.Value {
	case "rotate":
		err = v.Decode(&out.Rotate)
	case "scale":
		w, h, ok := strings.Cut(v.Value, "x")
		out.ScaleWidth, _ = strconv.Atoi(w)
		out.ScaleHeight, _ = strconv.Atoi(h)
		if !ok || v.Kind != yaml.ScalarNode || out.ScaleWidth == 0 || out.ScaleHeight == 0 {
			err = fmt.Errorf("line %d: scale %q is not WIDTHxHEIGHT like 640x360", v.Line, v.Value)
		}
	case "crop":
		out.Crop = &FilterCrop{}
		err = strict(out.Crop)
	case "text":
		out.Text = &FilterText{}
		err = strict(out.Text)
	case "image":
		out.Image = &FilterImage{}
		err = strict(out.Image)
	case "gain":
		err = v.Decode(&out.Gain)
	default:
		return fmt.Errorf("line %d: unknown filter %q (rotate, scale, crop, text, image, gain)", k.Line, k.Value)
	}
	if err != nil {
		return err
	}
	*f = out
	return nil
}

func (c *Config) validateFilters(bad func(key, format string, a ...any)) {
	if c.Filters.MaxStages < 1 || c.Filters.MaxStages > 1000 {
		bad("filters.max_stages", "%d is out of range 1-1000", c.Filters.MaxStages)
	}
	if c.Filters.Bitrate < 100000 || c.Filters.Bitrate > 50000000 {
		bad("filters.bitrate", "%d is out of range 100k-50M", c.Filters.Bitrate)
	}
	for i, r := range c.Streams {
		for j, f := range r.Filters {
			key := fmt.Sprintf("streams[%d].filters[%d].%s", i, j, f.kind)
			switch f.kind {
			case "rotate":
				if f.Rotate != 90 && f.Rotate != 180 && f.Rotate != 270 {
					bad(key, "%d is not 90, 180 or 270", f.Rotate)
				}
			case "scale":
				if f.ScaleWidth < 16 || f.ScaleHeight < 16 || f.ScaleWidth > 7680 || f.ScaleHeight > 4320 || f.ScaleWidth%2+f.ScaleHeight%2 != 0 {
					bad(key, "%dx%d: width and height must be even, 16x16-7680x4320", f.ScaleWidth, f.ScaleHeight)
				}
			case "crop":
				cr := f.Crop
				if cr.X < 0 || cr.Y < 0 || cr.Width < 16 || cr.Height < 16 || cr.Width%2+cr.Height%2 != 0 {
					bad(key, "x and y must be ≥ 0, width and height even and ≥ 16")
				}
			case "text":
				if f.Text.Title == "" && !f.Text.Clock {
					bad(key, "needs a title or clock: true")
				}
				if f.Text.Size < 0 || f.Text.Size > 500 {
					bad(key+".size", "%d is out of range 0-500", f.Text.Size)
				}
			case "image":
				if f.Image.Path == "" {
					bad(key+".path", "must not be empty")
				} else if st, err := os.Stat(f.Image.Path); err != nil || st.IsDir() {
					bad(key+".path", "%q is not a readable file", f.Image.Path)
				}
			case "gain":
				if f.Gain <= 0 || f.Gain > 10 {
					bad(key, "%g is out of range (0, 10]", f.Gain)
				}
			}
		}
	}
}

// Motion turns on motion detection for a stream (`streams[].motion`): no
// re-encode, events motion.start and motion.stop on /v1/events.
type Motion struct {
	// Sensitivity from 0 (exclusive: only big changes) to 1. Default 0.5.
	Sensitivity float64 `yaml:"sensitivity"`
	// Region is where to look, in fractions of the picture. Default whole.
	Region MotionRegion `yaml:"region"`
	// StopAfter is how long without motion ends it. Default 2s.
	StopAfter time.Duration `yaml:"stop_after"`
}

// MotionRegion is a rectangle in fractions (0–1) of the picture.
type MotionRegion struct {
	X      float64 `yaml:"x"`
	Y      float64 `yaml:"y"`
	Width  float64 `yaml:"width"`
	Height float64 `yaml:"height"`
}

func (c *Config) validateMotion(bad func(key, format string, a ...any)) {
	for i, r := range c.Streams {
		m := r.Motion
		if m == nil {
			continue
		}
		key := fmt.Sprintf("streams[%d].motion", i)
		if m.Sensitivity < 0 || m.Sensitivity > 1 {
			bad(key+".sensitivity", "%g is out of range 0-1", m.Sensitivity)
		}
		g := m.Region
		if g.X < 0 || g.Y < 0 || g.Width < 0 || g.Height < 0 || g.X+g.Width > 1 || g.Y+g.Height > 1 {
			bad(key+".region", "x, y, width, height are fractions of the picture: x+width and y+height at most 1")
		}
		if m.StopAfter < 0 || m.StopAfter > time.Hour {
			bad(key+".stop_after", "%s is out of range 0-1h", m.StopAfter)
		}
	}
}
