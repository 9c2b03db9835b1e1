package ingest

import (
	"errors"
	"time"
)

var (
	// ErrBadOffer is wrapped by Publish when the SDP offer cannot be parsed or
	// is not a publish offer (WHIP, RFC 9725 §4.2). The HTTP layer answers 400.
	ErrBadOffer = errors.New("bad SDP offer")
	// ErrNoVideoCodec is wrapped by Publish when the offer has no video m-line
	// with H.264: the only video codec every output can package as it came.
	ErrNoVideoCodec = errors.New("offer has no H.264 video")
	// ErrNoAudioCodec is wrapped by Publish when the offer has no audio m-line
	// with Opus.
	ErrNoAudioCodec = errors.New("offer has no Opus audio")
	// ErrSessionNotFound is returned for an unknown or ended session id.
	ErrSessionNotFound = errors.New("session not found")
	// ErrBadTrickle is wrapped when a trickle-ice-sdpfrag body (RFC 8840)
	// cannot be parsed or a candidate is refused.
	ErrBadTrickle = errors.New("bad trickle ICE fragment")
	// ErrICERestart is wrapped when a fragment or candidate carries an
	// ice-ufrag other than the current ICE session's without asking for an
	// ICE restart (WHIP/WHEP PATCH without If-Match: *, RFC 9725 §4.3.2), or
	// on the room socket, which has no restart. HTTP 422.
	ErrICERestart = errors.New("ICE restart refused")
	// ErrETagMismatch is returned by PatchICE when If-Match names another
	// ICE session than the current one (a trickle sent before an ICE
	// restart): HTTP 412, RFC 9725 §4.3.1.
	ErrETagMismatch = errors.New("If-Match does not match the ICE session's ETag")
	// ErrServerClosed is returned by Publish once Close has been called.
	ErrServerClosed = errors.New("ingest server closed")
	// ErrSessionClosed is the normal end of a session (DELETE, Close).
	ErrSessionClosed = errors.New("session closed")
	// ErrStreamClosed ends a session whose stream the gateway closes
	// (Server.CloseStream): the stream ends without a reconnect window.
	ErrStreamClosed = errors.New("stream closed by the gateway")
	// ErrUnauthorized is returned by a WHIP auth callback when the request
	// carries no credentials (HTTP 401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is returned by a WHIP auth callback when the credentials
	// are wrong for this stream (HTTP 403).
	ErrForbidden = errors.New("forbidden")
	// ErrOverloaded is wrapped by a *RefusedError: the admission check
	// (Config.Admission) refused a new publisher. HTTP 503.
	ErrOverloaded = errors.New("overloaded")
)

// RefusedError is a publish or playback refused by admission control
// before anything was negotiated. WHIP answers 503 with Retry-After and "overloaded:
// {Detail}"; the room socket sends the same status and text.
type RefusedError struct {
	// Reason names the check that refused, as the metric's label:
	// "max_publishers", "cpu" or "lag" for a publisher,
	// "max_viewers_per_stream" or "max_viewers" for a WHEP viewer.
	Reason string
	// Detail says why in words, naming the setting, e.g.
	// "limits.max_publishers (100) reached".
	Detail string
	// RetryAfter is when a retry may be admitted (the Retry-After header,
	// whole seconds rounded up).
	RetryAfter time.Duration
}

func (e *RefusedError) Error() string { return "overloaded: " + e.Detail }

// Unwrap makes errors.Is(err, ErrOverloaded) hold.
func (e *RefusedError) Unwrap() error { return ErrOverloaded }
