package filter

import "errors"

// ErrTooManyStages is returned by Stages.Start when the configured number of
// filter stages is already running.
var ErrTooManyStages = errors.New("filter: too many filter stages running (filters.max_stages)")

// ErrNoVideo is returned by Stages.Start for a stream without H.264 video
// when the chain changes video.
var ErrNoVideo = errors.New("filter: stream has no H.264 video track to filter")
