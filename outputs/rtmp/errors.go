package rtmp

import "errors"

var (
	// ErrBadURL is returned for a destination that is not rtmp(s)://host/app/key.
	ErrBadURL = errors.New("rtmp: bad destination URL")
	// ErrStopped ends a Pusher normally: Close or the stream's end.
	ErrStopped = errors.New("rtmp: stopped")
	// ErrNoKeyframe is set while waiting for the first video keyframe.
	ErrNoKeyframe = errors.New("rtmp: waiting for a keyframe")
	// ErrTimeout is a server that accepted TCP but did not answer in time.
	ErrTimeout = errors.New("rtmp: server did not answer in time")
	// ErrRefused is a server that answered and said no: connect to the app
	// refused (_error), or publish refused (an onStatus such as
	// NetStream.Publish.BadName, or _error), as for a wrong stream key.
	ErrRefused = errors.New("rtmp: refused by the server")
)
