package packager

import "errors"

var (
	// ErrBadRequest is wrapped by request-parsing errors: a path or an
	// _HLS_msn/_HLS_part query that cannot be served (HTTP 400).
	ErrBadRequest = errors.New("packager: bad request")
	// ErrNotFound is wrapped when a path names no file the packager serves
	// (HTTP 404).
	ErrNotFound = errors.New("packager: not found")
)
