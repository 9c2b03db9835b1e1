package storage

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"rec/cam1/20261124T235959Z/video_000001.m4s", true},
		{"a..b/c", true},
		{"", false},
		{"/abs", false},
		{"a/../b", false},
		{"..", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{`a\b`, false},
		{"a\nb", false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			err := ValidKey(tc.key)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
		})
	}
}

func TestLocal(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"p/s/b.m4s", "p/s/a.m4s", "p/t/c.mp4", "q/d"} {
		if err := l.Put(ctx, k, bytes.NewReader([]byte(k)), -1, Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Put(ctx, "../x", bytes.NewReader(nil), 0, Meta{}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("Put ../x: %v", err)
	}
	got, err := l.List(ctx, "p/s")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p/s/a.m4s", "p/s/b.m4s"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List p/s = %v, want %v", got, want)
	}
	b, err := l.Get(ctx, "p/t/c.mp4")
	if err != nil || string(b) != "p/t/c.mp4" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if err := l.Delete(ctx, "p/t/c.mp4"); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(ctx, "p/t/c.mp4"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := l.Get(ctx, "p/t/c.mp4"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	all, _ := l.List(ctx, "")
	if len(all) != 3 {
		t.Fatalf("List all = %v", all)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	one := func() float64 { return 0.999999 }
	zero := func() float64 { return 0 }
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 400 * time.Millisecond, 800 * time.Millisecond},
		{4, 500 * time.Millisecond, time.Second},
		{60, 500 * time.Millisecond, time.Second},
	} {
		if d := b.Delay(tc.attempt, zero); d != tc.lo {
			t.Errorf("attempt %d, jitter 0: %v, want %v", tc.attempt, d, tc.lo)
		}
		if d := b.Delay(tc.attempt, one); d > tc.hi || d < tc.hi-time.Millisecond {
			t.Errorf("attempt %d, jitter 1: %v, want ~%v", tc.attempt, d, tc.hi)
		}
		if d := b.Delay(tc.attempt, nil); d < tc.lo || d > tc.hi {
			t.Errorf("attempt %d: %v not in [%v, %v]", tc.attempt, d, tc.lo, tc.hi)
		}
	}
	if d := (Backoff{}).Delay(100, zero); d != 5*time.Second {
		t.Errorf("default cap: %v", d)
	}
}
