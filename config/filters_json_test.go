package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseFiltersJSON: the API's JSON chain decodes to the same Filters as
// the YAML and is refused where the YAML is, by the same validation.
func TestParseFiltersJSON(t *testing.T) {
	fs, err := ParseFilters([]byte(`[{"rotate":90},{"scale":"640x360"},{"crop":{"x":0,"y":10,"width":320,"height":180}},
		{"text":{"title":"Studio A","clock":true}},{"gain":1.5}]`), "")
	if err != nil {
		t.Fatal(err)
	}
	yc, err := Load([]byte(`streams: [{filters: [{rotate: 90}, {scale: "640x360"}, {crop: {x: 0, y: 10, width: 320, height: 180}}, {text: {title: "Studio A", clock: true}}, {gain: 1.5}]}]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range yc.Streams[0].Filters {
		a, _ := json.Marshal(f)
		b, _ := json.Marshal(fs[i])
		if string(a) != string(b) || f.Kind() != fs[i].Kind() {
			t.Errorf("entry %d: YAML %s, JSON %s", i, a, b)
		}
	}
	// GET shows what PUT takes: the marshalled chain parses back.
	out, _ := json.Marshal(fs)
	if again, err := ParseFilters(out, ""); err != nil || len(again) != len(fs) {
		t.Fatalf("round trip %s: %v", out, err)
	}
	for _, tc := range []struct{ body, want string }{
		{`[{"rotate":45}]`, "filters[0].rotate: 45 is not 90, 180 or 270"},
		{`[{"rotate":90},{"rotate":90.5}]`, "filters[1].rotate: a JSON number 90.5 where an integer is wanted"},
		{`[{"rotate":"90"}]`, "filters[0].rotate"},
		{`[{"scale":"big"}]`, "filters[0].scale"},
		{`[{"scale":"641x360"}]`, "filters[0].scale: 641x360: width and height must be even"},
		{`[{"blur":3}]`, `filters[0]: unknown filter "blur"`},
		{`[{"rotate":90,"scale":"640x360"}]`, "filters[0]: a filter is an object with one key"},
		{`[{"rotate":90,"rotate":180}]`, `filters[0]: key "rotate" is repeated`},
		{`[{}]`, "filters[0]: a filter is an object with one key"},
		{`[{"text":{"titel":"x"}}]`, `filters[0].text: unknown key "titel"`},
		{`[{"text":{"Title":"x"}}]`, `filters[0].text: unknown key "Title"`},
		{`[{"text":{}}]`, "filters[0].text: needs a title"},
		{`[{"text":{"title":"x","size":900}}]`, "filters[0].text.size: 900 is out of range"},
		{`[{"crop":{"x":0,"y":0,"width":15,"height":16}}]`, "filters[0].crop"},
		{`[{"gain":0}]`, "filters[0].gain: 0 is out of range"},
		{`[{"image":{"path":"logo.png"}}]`, "filters[0].image.path: image filters through the API need filters.image_dir"},
		{`[]`, "the list is empty"},
		{`{"rotate":90}`, "a JSON array"},
		{`[{"rotate":90}] [1]`, "data after"},
		{`[1]`, "filters[0]: not a JSON object"},
		{`[` + strings.Repeat(`{"rotate":90},`, MaxAPIFilters) + `{"rotate":90}]`, "at most 32"},
	} {
		_, err := ParseFilters([]byte(tc.body), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
}

// TestResolveImagePath: API image paths stay inside filters.image_dir.
func TestResolveImagePath(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "images")
	outside := filepath.Join(root, "secret.png")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "logo.png"), []byte("png"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sub", "b.png"), []byte("png"), 0o644))
	must(os.WriteFile(outside, []byte("secret"), 0o644))
	must(os.Symlink(outside, filepath.Join(dir, "escape.png")))
	must(os.Symlink(root, filepath.Join(dir, "up")))
	must(os.Symlink(filepath.Join(dir, "logo.png"), filepath.Join(dir, "alias.png")))
	// The directory itself through a symlink works.
	link := filepath.Join(root, "imglink")
	must(os.Symlink(dir, link))

	for _, tc := range []struct {
		dir, path, want, err string
	}{
		{dir, "logo.png", filepath.Join(dir, "logo.png"), ""},
		{dir, "sub/b.png", filepath.Join(dir, "sub", "b.png"), ""},
		{dir, filepath.Join(dir, "logo.png"), filepath.Join(dir, "logo.png"), ""},
		{dir, "alias.png", filepath.Join(dir, "logo.png"), ""},
		{dir, "sub/../logo.png", filepath.Join(dir, "logo.png"), ""},
		{link, "logo.png", filepath.Join(dir, "logo.png"), ""},
		{dir, "../secret.png", "", "outside filters.image_dir"},
		{dir, "sub/../../secret.png", "", "outside filters.image_dir"},
		{dir, outside, "", "outside filters.image_dir"},
		{dir, "/etc/passwd", "", "outside filters.image_dir"},
		{dir, "escape.png", "", "through a symlink"},
		{dir, "up/secret.png", "", "through a symlink"},
		{dir, "missing.png", "", "not a readable file"},
		{dir, "sub", "", "not a readable file"},
		{dir, ".", "", "outside"},
		{dir, "", "", "must not be empty"},
		{"", "logo.png", "", "need filters.image_dir"},
	} {
		got, err := ResolveImagePath(tc.dir, tc.path)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("%s in %s: %q %v, want %q", tc.path, tc.dir, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s in %s: %q %v, want error %q", tc.path, tc.dir, got, err, tc.err)
		}
	}

	// Through ParseFilters: the entry's path becomes the resolved one, and
	// the error names the entry.
	fs, err := ParseFilters([]byte(`[{"image":{"path":"logo.png","x":-10,"y":10}}]`), dir)
	if err != nil || fs[0].Image.Path != filepath.Join(dir, "logo.png") || fs[0].Image.X != -10 {
		t.Fatalf("%+v %v", fs, err)
	}
	if _, err := ParseFilters([]byte(`[{"rotate":90},{"image":{"path":"../secret.png"}}]`), dir); err == nil ||
		!strings.Contains(err.Error(), "filters[1].image.path: is outside") {
		t.Fatalf("traversal: %v", err)
	}
	if _, err := Load([]byte("filters: {image_dir: /nonexistent-dir}"), nil); err == nil || !strings.Contains(err.Error(), "filters.image_dir") {
		t.Fatalf("image_dir: %v", err)
	}
}

// TestParseMotionJSON: the API's motion body, strict and validated as the
// config is.
func TestParseMotionJSON(t *testing.T) {
	m, err := ParseMotion([]byte(`{"sensitivity":0.7,"region":{"x":0.5,"y":0,"width":0.5,"height":1},"stop_after":"3s","webhook":"https://h.example/hook?t=1","webhook_secret":"s"}`))
	if err != nil || m.Sensitivity != 0.7 || m.Region.Width != 0.5 || m.StopAfter != 3*time.Second || m.WebhookSecret != "s" {
		t.Fatalf("%+v %v", m, err)
	}
	if m, err := ParseMotion([]byte(`{"stop_after":1.5}`)); err != nil || m.StopAfter != 1500*time.Millisecond {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := ParseMotion([]byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"sensitivity":2}`, "sensitivity: 2 is out of range"},
		{`{"sensitivty":1}`, `unknown key "sensitivty"`},
		{`{"region":{"x":0.5,"width":0.6}}`, "region: x, y, width, height"},
		{`{"region":{"w":1}}`, `region: unknown key "w"`},
		{`{"stop_after":"soon"}`, "stop_after: \"soon\" is not a duration"},
		{`{"stop_after":"2h"}`, "stop_after: 2h0m0s is out of range"},
		{`{"webhook":"ftp://h/x"}`, `webhook: scheme "ftp" is not http or https`},
		{`{"webhook":"http:///x"}`, "webhook: has no host"},
		{`{"webhook_secret":"s"}`, "webhook_secret: is set without a webhook"},
		{`{"sensitivity":0.5,"sensitivity":0.6}`, "repeated"},
		{`[]`, "not a JSON object"},
	} {
		_, err := ParseMotion([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
	// The config refuses the same, naming its key.
	if _, err := Load([]byte(`streams: [{motion: {webhook: "ftp://h/x"}}]`), nil); err == nil || !strings.Contains(err.Error(), "streams[0].motion.webhook") {
		t.Fatalf("config webhook: %v", err)
	}
	if c, err := Load([]byte(`streams: [{motion: {webhook: "http://127.0.0.1:9/x", webhook_secret: k}}]`), nil); err != nil || c.Streams[0].Motion.WebhookSecret != "k" {
		t.Fatalf("config webhook: %v", err)
	}
}
