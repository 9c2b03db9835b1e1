package ingest

import (
	"errors"
	"strings"
)

// release hands the stream back to the registry when the session ends. A
// publisher that dropped (DELETE, ICE or DTLS failure, media timeout) leaves
// its stream held for the registry's reconnect window, so that publishing the
// same name again continues every output; a shutdown or Server.CloseStream
// ends it at once.
func (s *Session) release() {
	if errors.Is(s.endErr, ErrServerClosed) || errors.Is(s.endErr, ErrStreamClosed) {
		s.srv.reg.Unpublish(s.stream)
		return
	}
	reason := "unpublished" // WHIP DELETE, room socket
	if s.endErr != nil && !errors.Is(s.endErr, ErrSessionClosed) {
		reason = strings.TrimPrefix(s.endErr.Error(), "ingest: ")
	}
	s.srv.reg.Hold(s.stream, reason)
}
