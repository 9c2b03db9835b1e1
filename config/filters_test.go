package config

import (
	"strings"
	"testing"
)

func TestFilters(t *testing.T) {
	c, err := Load([]byte(`
filters: {max_stages: 2}
streams:
  - match: "cam*"
    filters:
      - rotate: 90
      - scale: "640x360"
      - crop: {x: 0, y: 10, width: 320, height: 180}
      - text: {title: "Studio A", clock: true}
      - image: {path: "../testdata/logo.png", x: -10, y: 10}
      - gain: 1.5
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := c.Streams[0].Filters
	if len(fs) != 6 || fs[0].Rotate != 90 || fs[1].ScaleWidth != 640 || fs[1].ScaleHeight != 360 ||
		fs[2].Crop.Height != 180 || fs[3].Text.Title != "Studio A" || fs[4].Image.X != -10 || fs[5].Gain != 1.5 {
		t.Fatalf("%+v", fs)
	}
	if m, err := Load([]byte(`streams: [{motion: {sensitivity: 0.7, region: {x: 0.5, y: 0, width: 0.5, height: 1}}}]`), nil); err != nil || m.Streams[0].Motion.Region.X != 0.5 {
		t.Fatalf("motion: %v", err)
	}
	if c.Filters.MaxStages != 2 || c.Filters.Bitrate != 1500000 {
		t.Fatalf("%+v", c.Filters)
	}
	for _, tc := range []struct{ doc, want string }{
		{`streams: [{filters: [{rotate: 45}]}]`, "streams[0].filters[0].rotate: 45 is not 90"},
		{`streams: [{filters: [{scale: "big"}]}]`, "not WIDTHxHEIGHT"},
		{`streams: [{filters: [{blur: 3}]}]`, `unknown filter "blur"`},
		{`streams: [{filters: [{rotate: 90, scale: "2x2"}]}]`, "one key"},
		{`streams: [{filters: [{text: {titel: x}}]}]`, "titel"},
		{`streams: [{filters: [{text: {}}]}]`, "needs a title"},
		{`streams: [{filters: [{image: {path: /nonexistent.png}}]}]`, "filters[0].image.path"},
		{`streams: [{filters: [{gain: 0}]}]`, "gain: 0 is out of range"},
		{`filters: {max_stages: 0}`, "filters.max_stages"},
		{`streams: [{motion: {sensitivity: 2}}]`, "streams[0].motion.sensitivity"},
		{`streams: [{motion: {region: {x: 0.5, width: 0.6}}}]`, "streams[0].motion.region"},
		{`streams: [{motion: {sensitivty: 1}}]`, "sensitivty"},
	} {
		_, err := Load([]byte(tc.doc), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}
}
