package storage

import "errors"

var (
	// ErrBadKey is returned for an object key that could escape its prefix or
	// the local root: empty, absolute, with a ".." or "." segment, an empty
	// segment, a backslash or a control character.
	ErrBadKey = errors.New("storage: bad object key")
	// ErrNotFound is returned by Get for a key that holds no object.
	ErrNotFound = errors.New("storage: object not found")
	// ErrForbidden wraps a refusal of the credentials (S3 403, AccessDenied,
	// InvalidAccessKeyId, SignatureDoesNotMatch): retrying will not help
	// until the configuration changes, so the spool reports it as such.
	ErrForbidden = errors.New("storage: access denied")
	// ErrDiskFull wraps ENOSPC/EDQUOT from the local disk or the spool.
	ErrDiskFull = errors.New("storage: disk full")
	// ErrClosed is returned by a Spool after Close.
	ErrClosed = errors.New("storage: spool closed")
)
