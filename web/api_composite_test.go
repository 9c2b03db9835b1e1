package web

import (
	"bytes"
	"errors"
	"testing"

	"github.com/whipcast/whipcast/stages/composite"
)

func TestDecodeComposite(t *testing.T) {
	s, err := decodeComposite(bytes.NewReader(nil))
	if err != nil || s != (composite.Settings{}) {
		t.Fatalf("empty body: %+v %v", s, err)
	}
	s, err = decodeComposite(bytes.NewReader([]byte(`{"layout":"speaker","width":640,"height":360,"fps":25}`)))
	if err != nil || s.Layout != "speaker" || s.Width != 640 || s.FPS != 25 {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{`{"layot":"grid"}`, `{"width":"640"}`, `{} {}`, `[`, `{"delay":"1s"}`} {
		if _, err := decodeComposite(bytes.NewReader([]byte(bad))); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// FuzzDecodeComposite: any body either fails to decode or yields settings
// that Normalize accepts or refuses with ErrBadSettings, never a panic.
func FuzzDecodeComposite(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"layout":"grid","width":1280,"height":720,"fps":30}`, `{"width":-1}`, `{"fps":1e9}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeComposite(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := s.Normalize(); err != nil && !errors.Is(err, composite.ErrBadSettings) {
			t.Fatalf("Normalize: %v", err)
		}
	})
}
