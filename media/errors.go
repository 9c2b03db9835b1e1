package media

import "errors"

var (
	// ErrStreamEnded is returned to readers once the publisher has left. It is
	// the normal end of a reader, not a failure.
	ErrStreamEnded = errors.New("stream ended")
	// ErrReaderTooSlow is returned to a reader whose queue overflowed: it fell
	// behind the live edge and was dropped so the publisher is never slowed.
	ErrReaderTooSlow = errors.New("reader too slow: queue full, dropped")
	// ErrReaderSkipped is returned once to a reader of SubscribeSkipping
	// that fell behind: what was queued is gone, and the next Read returns
	// the stream's next video keyframe (its next frame, without video). The
	// reader resets whatever it keeps across frames (a GOP being muxed, a
	// decoder's reference) and goes on reading.
	ErrReaderSkipped = errors.New("reader fell behind: skipped to the next keyframe")
	// ErrReaderClosed is returned after Reader.Close.
	ErrReaderClosed = errors.New("reader closed")
	// ErrStreamBusy is returned by Registry.Publish when the name already has
	// a live publisher.
	ErrStreamBusy = errors.New("stream already has a publisher")
	// ErrStreamNotFound is returned for a name with no live stream.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrRegistryClosed is returned once the registry is shutting down.
	ErrRegistryClosed = errors.New("registry closed")
)
