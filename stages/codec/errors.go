package codec

import "errors"

// ErrNoCodecs is returned by every constructor of a build made with
// `-tags nocodec`: the gateway then runs passthrough only.
var ErrNoCodecs = errors.New("codec: whipcast was built without codec support (-tags nocodec): Opus→AAC, video filters and other transcoding are unavailable")

// ErrBadSettings wraps a setting the codec cannot use.
var ErrBadSettings = errors.New("codec: bad settings")
