// Package storage is where recorded and published bytes land: a small Store
// interface with a local-disk and an S3 backend, and a Spool that writes
// every object to a local directory first and uploads it from there, so that
// an S3 outage or a restart loses nothing.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"syscall"
)

// Meta is the HTTP metadata stored with an object.
type Meta struct {
	// ContentType is the object's Content-Type. Default: from the key's
	// extension (TypeByKey).
	ContentType string
	// CacheControl is the object's Cache-Control. Default none.
	CacheControl string
}

// Store holds objects by key. Keys are "/"-separated relative paths checked
// by ValidKey. Implementations are safe for concurrent use.
type Store interface {
	// Put stores size bytes read from r under key, replacing any object
	// there. size may be -1 when unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64, m Meta) error
	// Get returns the object's bytes, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// ValidKey reports whether key is a safe object key: non-empty, at most 1024
// bytes, relative (no leading "/"), no empty, "." or ".." segment, no
// backslash and no control character.
func ValidKey(key string) error {
	if key == "" || len(key) > 1024 || strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	return nil
}

// TypeByKey is the Content-Type of the media files we write, by extension.
func TypeByKey(key string) string {
	switch path.Ext(key) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl"
	case ".mpd":
		return "application/dash+xml"
	case ".m4s":
		return "video/iso.segment"
	case ".mp4":
		return "video/mp4"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// diskErr wraps out-of-space errors with ErrDiskFull.
func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}
