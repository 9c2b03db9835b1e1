package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

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
	// ImageDir is the only directory image filters set through the API
	// may read from (paths resolved inside it, symlinks included). Default
	// "": the API refuses image filters, so an API caller can never make
	// the gateway open an arbitrary server file. Config entries are not
	// bound by it.
	ImageDir string `yaml:"image_dir"`
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
	X      int `yaml:"x" json:"x"`
	Y      int `yaml:"y" json:"y"`
	Width  int `yaml:"width" json:"width"`
	Height int `yaml:"height" json:"height"`
}

// FilterText is a text overlay: a title at the top left and/or the clock at
// the bottom left.
type FilterText struct {
	Title string `yaml:"title" json:"title,omitempty"`
	Clock bool   `yaml:"clock" json:"clock,omitempty"`
	// Size is the font size in pixels. Default 24.
	Size int `yaml:"size" json:"size,omitempty"`
}

// FilterImage overlays an image file; negative x/y count from the right and
// bottom edges.
type FilterImage struct {
	Path string `yaml:"path" json:"path"`
	X    int    `yaml:"x" json:"x"`
	Y    int    `yaml:"y" json:"y"`
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
	if d := c.Filters.ImageDir; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			bad("filters.image_dir", "%q is not a directory", d)
		}
	}
	for i, r := range c.Streams {
		for j, f := range r.Filters {
			if err := f.Validate(); err != nil {
				badField(bad, fmt.Sprintf("streams[%d].filters[%d]", i, j), err)
			}
		}
	}
}

// FieldError is a value that does not validate. Key names it relative to
// what was validated (e.g. "rotate" or "image.path" of a filter entry), so
// the config names streams[0].filters[2].rotate and the API filters[2].rotate.
type FieldError struct {
	Key, Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// badField reports err (from Filter.Validate or Motion.Validate) under
// prefix; a FieldError keeps its own key.
func badField(bad func(key, format string, a ...any), prefix string, err error) {
	var fe *FieldError
	if errors.As(err, &fe) {
		bad(prefix+"."+fe.Key, "%s", fe.Msg)
		return
	}
	bad(prefix, "%v", err)
}

// Validate checks one filter entry; the config and the API
// (PUT /v1/streams/{stream}/filters) both use it. The error is a
// *FieldError naming the entry's key. An image path must name a readable
// file; where API paths may point is checked first by ResolveImagePath.
func (f Filter) Validate() error {
	bad := func(key, format string, a ...any) error {
		return &FieldError{Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	key := f.kind
	switch f.kind {
	case "rotate":
		if f.Rotate != 90 && f.Rotate != 180 && f.Rotate != 270 {
			return bad(key, "%d is not 90, 180 or 270", f.Rotate)
		}
	case "scale":
		if f.ScaleWidth < 16 || f.ScaleHeight < 16 || f.ScaleWidth > 7680 || f.ScaleHeight > 4320 || f.ScaleWidth%2+f.ScaleHeight%2 != 0 {
			return bad(key, "%dx%d: width and height must be even, 16x16-7680x4320", f.ScaleWidth, f.ScaleHeight)
		}
	case "crop":
		cr := f.Crop
		if cr.X < 0 || cr.Y < 0 || cr.Width < 16 || cr.Height < 16 || cr.Width%2+cr.Height%2 != 0 {
			return bad(key, "x and y must be ≥ 0, width and height even and ≥ 16")
		}
	case "text":
		if f.Text.Title == "" && !f.Text.Clock {
			return bad(key, "needs a title or clock: true")
		}
		if f.Text.Size < 0 || f.Text.Size > 500 {
			return bad(key+".size", "%d is out of range 0-500", f.Text.Size)
		}
	case "image":
		if f.Image.Path == "" {
			return bad(key+".path", "must not be empty")
		} else if st, err := os.Stat(f.Image.Path); err != nil || !st.Mode().IsRegular() {
			return bad(key+".path", "%q is not a readable file", f.Image.Path)
		}
	case "gain":
		if f.Gain <= 0 || f.Gain > 10 {
			return bad(key, "%g is out of range (0, 10]", f.Gain)
		}
	default:
		return bad("filter", "unknown filter %q (rotate, scale, crop, text, image, gain)", f.kind)
	}
	return nil
}
