package ingest

import "time"

const (
	// endedMemory is how many ended session ids are remembered, and
	// endedFor for how long: long enough for a client that closed its
	// PeerConnection first (whip-whep's stop()) to send its DELETE, or for
	// a WHEP viewer to DELETE after the stream ended.
	endedMemory = 1024
	endedFor    = 5 * time.Minute
)

// endedIDs remembers the last endedMemory ended session ids with their
// stream, so that a DELETE of one is answered 200 (idempotent, RFC 9110
// §9.2.2) and not 404. It is bounded: the oldest id is forgotten when a new
// one comes. Not safe for concurrent use: Server.mu guards it.
type endedIDs struct {
	ring []string // ids in the order they ended; len ≤ endedMemory
	next int      // the slot the next id overwrites once ring is full
	byID map[string]endedID
}

type endedID struct {
	stream string
	at     time.Time
}

// add records that session id of stream ended at now.
func (e *endedIDs) add(id, stream string, now time.Time) {
	if e.byID == nil {
		e.byID = make(map[string]endedID)
	}
	if len(e.ring) < endedMemory {
		e.ring = append(e.ring, id)
	} else {
		delete(e.byID, e.ring[e.next])
		e.ring[e.next] = id
		e.next = (e.next + 1) % endedMemory
	}
	e.byID[id] = endedID{stream: stream, at: now}
}

// has reports whether session id of stream ended within endedFor of now.
func (e *endedIDs) has(id, stream string, now time.Time) bool {
	x, ok := e.byID[id]
	return ok && x.stream == stream && now.Sub(x.at) < endedFor
}

// SessionEnded reports whether the WHIP session id of stream ended
// recently (it is no longer live).
func (s *Server) SessionEnded(id, stream string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endedPub.has(id, stream, time.Now())
}

// ViewerEnded reports whether the WHEP session id of stream ended recently.
func (s *Server) ViewerEnded(id, stream string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endedView.has(id, stream, time.Now())
}
