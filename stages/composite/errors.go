package composite

import "errors"

// Errors.
var (
	// ErrTooMany is wrapped when rooms.max_composites composites run.
	ErrTooMany = errors.New("too many composites")
	// ErrExists is returned when the room already has a composite.
	ErrExists = errors.New("room already has a composite")
	// ErrNotFound is returned for a room without a composite.
	ErrNotFound = errors.New("room has no composite")
	// ErrBadSettings wraps a setting out of range.
	ErrBadSettings = errors.New("bad composite settings")
	// ErrClosed is returned by Start once the Manager is closed.
	ErrClosed = errors.New("composites closed")
)
