package ingest

import (
	"errors"
	"strings"
	"time"
)

// staleAfter is how long a session may go without receiving any RTP before
// a new publish of its name takes the stream over (the old session ends as
// dropped, its stream is held and resumed by the new one). A publisher whose
// network went away reconnects with a new session well before ICE (10 s) or
// the media timeout notice the old one has gone; until this long without a
// packet a second publisher is still refused (409). Video alone sends ~30
// packets a second, so 3 s of silence is not a live publisher.
const staleAfter = 3 * time.Second

// errReplaced ends a stale session taken over by a new publish.
var errReplaced = errors.New("ingest: no media, replaced by a new publish")

// takeOverStale ends the session publishing stream if it has received no
// RTP for staleAfter, and waits until its stream is held. It reports
// whether it ended one.
func (s *Server) takeOverStale(stream string) bool {
	old := s.sessionNamed(stream)
	if old == nil || time.Since(time.Unix(0, old.lastPacket.Load())) < staleAfter {
		return false
	}
	s.log.Info("ingest: a new publish takes over a session without media", "stream", stream, "session", old.id)
	old.end(errReplaced)
	<-old.done
	return true
}

// release hands the stream back to the registry when the session ends. A
// publisher that dropped (DELETE, ICE or DTLS failure, media timeout) leaves
// its stream held for the registry's reconnect window, so that publishing the
// same name again continues every output; a shutdown or Server.CloseStream
// ends it at once.
//
// A session that timed out before any media (ICE or idle timeout) ends its
// stream at once too, so its name is free: nothing was published under it.
// One that resumed a held stream hands it back held instead, as a failed
// resume does, so the stream it continues keeps the rest of its window.
func (s *Session) release() {
	if errors.Is(s.endErr, ErrServerClosed) || errors.Is(s.endErr, ErrStreamClosed) || (s.neverPublished() && !s.resumed) {
		s.srv.reg.Unpublish(s.stream)
		return
	}
	reason := "unpublished" // WHIP DELETE, room socket
	if s.endErr != nil && !errors.Is(s.endErr, ErrSessionClosed) {
		reason = strings.TrimPrefix(s.endErr.Error(), "ingest: ")
	}
	s.srv.reg.Hold(s.stream, reason)
}
