package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

func TestLocalOpenSeeks(t *testing.T) {
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := []byte("0123456789abcdef")
	if err := l.Put(ctx, "a/b.mp4", bytes.NewReader(data), int64(len(data)), Meta{}); err != nil {
		t.Fatal(err)
	}
	obj, err := l.Open(ctx, "a/b.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.Size() != 16 {
		t.Fatalf("size %d", obj.Size())
	}
	if _, err := obj.Seek(-4, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(obj)
	if string(b) != "cdef" {
		t.Fatalf("tail %q", b)
	}
	if _, err := l.Open(ctx, "a/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := l.Open(ctx, "../x"); err == nil {
		t.Fatal("bad key opened")
	}
}
