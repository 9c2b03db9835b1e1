package ingest

import "github.com/whipcast/whipcast/media"

// Admission decides whether a new publisher may start. Server.Publish asks
// it before the offer is parsed, before any PeerConnection or registry
// entry exists, so a refusal costs next to nothing and disturbs no live
// stream.
type Admission interface {
	// Admit is asked for a publish of a name the gateway does not have yet;
	// publishers is how many there would be with it: live sessions,
	// publishes being negotiated and streams held for a reconnect (each name
	// once), plus this one. It returns nil or a *RefusedError. It runs under
	// the server's lock (so two POSTs cannot both take the last place) and
	// must not block.
	Admit(publishers int) error
}

// admit reserves a publisher's place for stream until release is called
// (once the session is registered or the publish failed). A publish of a
// name that is live, held or being negotiated replaces itself (a reconnect
// resuming its held stream, a takeover of a session without media, or a
// duplicate that the registry will refuse with 409): it is admitted without
// asking, because it adds no publisher and refusing a reconnect would end
// the stream it continues.
func (s *Server) admit(stream string) (release func(), err error) {
	held := s.heldNames()
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.publisherNames(held)
	if _, replaces := names[stream]; !replaces && s.admission != nil {
		if err := s.admission.Admit(len(names) + 1); err != nil {
			return nil, err
		}
	}
	s.pending[stream]++
	return func() {
		s.mu.Lock()
		if s.pending[stream]--; s.pending[stream] <= 0 {
			delete(s.pending, stream)
		}
		s.mu.Unlock()
	}, nil
}

// Publishers returns how many publishers count against the admission limit
// now: live sessions, publishes being negotiated and held streams, each
// name once.
func (s *Server) Publishers() int {
	held := s.heldNames()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.publisherNames(held))
}

// publisherNames is the set of names taken by a publisher; s.mu is held.
// held was read from the registry before taking s.mu (its lock is never
// taken under ours); a stream held or resumed meanwhile is still counted
// once, by its session or its name.
func (s *Server) publisherNames(held []string) map[string]struct{} {
	names := make(map[string]struct{}, len(s.sessions)+len(s.pending)+len(held))
	for _, x := range s.sessions {
		names[x.name] = struct{}{}
	}
	for n := range s.pending {
		names[n] = struct{}{}
	}
	for _, n := range held {
		names[n] = struct{}{}
	}
	return names
}

// heldNames lists the streams held for their publisher's reconnect. Only
// ingest holds streams (Session.release), so each is one of our publishers.
func (s *Server) heldNames() []string {
	var out []string
	for _, st := range s.reg.List() {
		if state, _, _ := st.State(); state == media.StateInterrupted {
			out = append(out, st.Name)
		}
	}
	return out
}

// ViewerAdmission decides whether a new WHEP viewer may start. Server.Play
// asks it once the offer has been checked and the stream found, before any
// PeerConnection exists.
type ViewerAdmission interface {
	// AdmitViewer is asked for a new playback of a live stream;
	// streamViewers and viewers are how many playbacks there would be with
	// it, of that stream and in all (live and being negotiated). It returns
	// nil or a *RefusedError. It runs under the server's lock and must not
	// block.
	AdmitViewer(streamViewers, viewers int) error
}

// admitViewer reserves a viewer's place on stream until release is called
// (once the viewer is registered or the playback failed).
func (s *Server) admitViewer(stream string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.viewerAdmission != nil {
		perStream, total := s.pendingView[stream]+1, len(s.viewers)+1
		for _, n := range s.pendingView {
			total += n
		}
		for _, v := range s.viewers {
			if v.name == stream {
				perStream++
			}
		}
		if err := s.viewerAdmission.AdmitViewer(perStream, total); err != nil {
			return nil, err
		}
	}
	s.pendingView[stream]++
	return func() {
		s.mu.Lock()
		if s.pendingView[stream]--; s.pendingView[stream] <= 0 {
			delete(s.pendingView, stream)
		}
		s.mu.Unlock()
	}, nil
}

// ViewerCounts returns the playbacks live or being negotiated, in all and
// of each stream that has one.
func (s *Server) ViewerCounts() (total int, byStream map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byStream = make(map[string]int, len(s.pendingView))
	for n, c := range s.pendingView {
		byStream[n] += c
		total += c
	}
	for _, v := range s.viewers {
		byStream[v.name]++
		total++
	}
	return total, byStream
}
