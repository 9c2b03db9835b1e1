package bench

import "errors"

var (
	// ErrProc is a /proc file that does not read as expected.
	ErrProc = errors.New("bench: unexpected /proc contents")
	// ErrUsage is a bad command line.
	ErrUsage = errors.New("bench: usage")
	// ErrPlaylist is an HLS playlist or DASH MPD the readers cannot use.
	ErrPlaylist = errors.New("bench: unusable playlist")
)
