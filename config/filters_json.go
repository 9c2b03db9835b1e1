package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MaxAPIFilters bounds the entries of one PUT /v1/streams/{stream}/filters.
const MaxAPIFilters = 32

// ParseFilters decodes and validates a filter chain as
// PUT /v1/streams/{stream}/filters takes it: a JSON array of entries shaped
// like the YAML ones (`[{"rotate": 90}, {"scale": "640x360"}, {"text":
// {"title": "x", "clock": true}}]`), as strictly as the YAML (one key per
// entry; unknown, misspelt or repeated keys are refused) and validated by
// the same Filter.Validate. Image paths are resolved inside imageDir
// (filters.image_dir) by ResolveImagePath; with imageDir "" image filters are
// refused. Errors name the entry: "filters[2].rotate: 45 is not 90, 180 or 270".
func ParseFilters(body []byte, imageDir string) ([]Filter, error) {
	var raw []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("filters: a JSON array of filters like [{\"rotate\": 90}]: %s", jsonMessage(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("filters: data after the JSON array")
	}
	if len(raw) == 0 {
		return nil, errors.New("filters: the list is empty (DELETE stops a stream's filters)")
	}
	if len(raw) > MaxAPIFilters {
		return nil, fmt.Errorf("filters: %d entries, at most %d", len(raw), MaxAPIFilters)
	}
	out := make([]Filter, len(raw))
	for i, r := range raw {
		entry := fmt.Sprintf("filters[%d]", i)
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, entryError(entry, err)
		}
		if out[i].kind == "image" {
			p, err := ResolveImagePath(imageDir, out[i].Image.Path)
			if err != nil {
				return nil, fmt.Errorf("%s.image.path: %w", entry, err)
			}
			img := *out[i].Image
			img.Path = p
			out[i].Image = &img
		}
		if err := out[i].Validate(); err != nil {
			return nil, entryError(entry, err)
		}
	}
	return out, nil
}

// entryError names the entry, and the key in it when err is a FieldError:
// filters[2].rotate: …
func entryError(entry string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fmt.Errorf("%s.%w", entry, err)
	}
	return fmt.Errorf("%s: %w", entry, err)
}

// UnmarshalJSON implements json.Unmarshaler with the YAML's strictness: an
// object with exactly one known key.
func (f *Filter) UnmarshalJSON(b []byte) error {
	fields, keys, err := objectFields(b)
	if err != nil {
		return err
	}
	if len(keys) != 1 {
		return errors.New("a filter is an object with one key: rotate, scale, crop, text, image or gain")
	}
	k, v := keys[0], fields[keys[0]]
	out := Filter{kind: k}
	switch k {
	case "rotate":
		err = json.Unmarshal(v, &out.Rotate)
	case "scale":
		var s string
		err = json.Unmarshal(v, &s)
		w, h, ok := strings.Cut(s, "x")
		out.ScaleWidth, _ = strconv.Atoi(w)
		out.ScaleHeight, _ = strconv.Atoi(h)
		if err != nil || !ok || out.ScaleWidth == 0 || out.ScaleHeight == 0 {
			err = fmt.Errorf("%s is not a string WIDTHxHEIGHT like \"640x360\"", strings.TrimSpace(string(v)))
		}
	case "crop":
		out.Crop = &FilterCrop{}
		err = decodeStrict(v, out.Crop, "x", "y", "width", "height")
	case "text":
		out.Text = &FilterText{}
		err = decodeStrict(v, out.Text, "title", "clock", "size")
	case "image":
		out.Image = &FilterImage{}
		err = decodeStrict(v, out.Image, "path", "x", "y")
	case "gain":
		err = json.Unmarshal(v, &out.Gain)
	default:
		return fmt.Errorf("unknown filter %q (rotate, scale, crop, text, image, gain)", k)
	}
	if err != nil {
		return &FieldError{Key: k, Msg: jsonMessage(err)}
	}
	*f = out
	return nil
}

// MarshalJSON implements json.Marshaler: the entry in the shape it is
// written in (`{"rotate": 90}`), so GET shows what PUT takes.
func (f Filter) MarshalJSON() ([]byte, error) {
	var v any
	switch f.kind {
	case "rotate":
		v = f.Rotate
	case "scale":
		v = fmt.Sprintf("%dx%d", f.ScaleWidth, f.ScaleHeight)
	case "crop":
		v = f.Crop
	case "text":
		v = f.Text
	case "image":
		v = f.Image
	case "gain":
		v = f.Gain
	default:
		return nil, fmt.Errorf("config: filter without a kind")
	}
	return json.Marshal(map[string]any{f.kind: v})
}

// ResolveImagePath returns the real path (symlinks resolved) of an image
// named by the API, refusing anything outside dir: ".." that climbs out,
// absolute paths elsewhere, and symlinks inside dir that point out of it.
// A relative p is taken relative to dir. dir "" (filters.image_dir unset)
// refuses every path. Why: image overlays are read by FFmpeg, and a path
// from the network must not make the gateway read arbitrary server files.
func ResolveImagePath(dir, p string) (string, error) {
	if dir == "" {
		return "", errors.New("image filters through the API need filters.image_dir (the directory images may be read from)")
	}
	if p == "" {
		return "", errors.New("must not be empty")
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("contains a NUL byte")
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("filters.image_dir: %w", err)
	}
	realDir, err := filepath.EvalSymlinks(absDir)
	if err != nil {
		return "", fmt.Errorf("filters.image_dir is not readable")
	}
	cand := p
	if !filepath.IsAbs(cand) {
		cand = filepath.Join(absDir, cand)
	}
	cand = filepath.Clean(cand)
	// First the lexical check, so nothing outside the directory is even
	// looked at (the answer never tells whether such a file exists).
	if !within(absDir, cand) && !within(realDir, cand) {
		return "", errors.New("is outside filters.image_dir")
	}
	real, err := filepath.EvalSymlinks(cand)
	if err != nil {
		return "", errors.New("is not a readable file in filters.image_dir")
	}
	if !within(realDir, real) {
		return "", errors.New("leads outside filters.image_dir (through a symlink)")
	}
	st, err := os.Stat(real)
	if err != nil || !st.Mode().IsRegular() {
		return "", errors.New("is not a readable file in filters.image_dir")
	}
	return real, nil
}

// within reports whether p is strictly inside dir (both clean, absolute).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// objectFields reads a JSON object's members in order, refusing repeated
// keys (encoding/json would keep the last one silently; YAML refuses them).
func objectFields(b []byte) (map[string]json.RawMessage, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, errors.New("not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, errors.New(jsonMessage(err))
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("%s: %s", k, jsonMessage(err))
		}
		if _, dup := fields[k]; dup {
			return nil, nil, fmt.Errorf("key %q is repeated", k)
		}
		fields[k] = v
		keys = append(keys, k)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, errors.New(jsonMessage(err))
	}
	return fields, keys, nil
}

// strictObject is objectFields that also refuses keys not in known,
// comparing case-sensitively as YAML does (encoding/json alone would
// take "Title" for "title").
func strictObject(b []byte, known ...string) (map[string]json.RawMessage, error) {
	fields, keys, err := objectFields(b)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("unknown key %q (%s)", k, strings.Join(known, ", "))
		}
	}
	return fields, nil
}

// decodeStrict decodes the object b into dst after strictObject's checks.
func decodeStrict(b []byte, dst any, known ...string) error {
	if _, err := strictObject(b, known...); err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// jsonMessage words a JSON error without Go type names.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a JSON %s where %s is wanted", te.Value, goKind(te.Type.String()))
	}
	return err.Error()
}

func goKind(t string) string {
	switch {
	case strings.HasPrefix(t, "int"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	}
	return "an object"
}
