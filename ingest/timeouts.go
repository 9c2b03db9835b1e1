package ingest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

const (
	// defaultICETimeout bounds the time from the answer to a connected
	// PeerConnection (ICE and DTLS): a browser on loopback connects in
	// well under a second, one through TURN in a few.
	defaultICETimeout = 10 * time.Second
	// defaultPublishIdleTimeout bounds the time from the answer to the
	// first RTP packet of a publish: a browser sends its first packets
	// within a second of connecting.
	defaultPublishIdleTimeout = 10 * time.Second
)

var (
	// ErrConnectTimeout ends a session whose ICE or DTLS did not complete
	// within Config.ICETimeout of the answer. Its name is free at once (no
	// reconnect window: nothing was ever published under it).
	ErrConnectTimeout = errors.New("ICE/DTLS did not connect")
	// ErrPublishIdle ends a publish that connected but sent no RTP within
	// Config.PublishIdleTimeout of the answer. Its name is free at once.
	ErrPublishIdle = errors.New("no media after the answer")
)

// Timeouts counts the sessions the server ended for a timeout, since start
// (the whipcast_session_timeouts_total metric).
type Timeouts struct {
	// PublishICE: publishes whose ICE/DTLS never connected (ICETimeout).
	PublishICE uint64
	// PublishIdle: publishes that connected and sent no RTP
	// (PublishIdleTimeout).
	PublishIdle uint64
	// PublishMedia: publishes whose RTP stopped for MediaTimeout.
	PublishMedia uint64
	// PlayICE: WHEP viewers whose ICE/DTLS never connected (ICETimeout).
	PlayICE uint64
}

// timeoutCounters are the atomics behind Timeouts.
type timeoutCounters struct {
	publishICE, publishIdle, publishMedia, playICE atomic.Uint64
}

// Timeouts returns the sessions ended for a timeout since start.
func (s *Server) Timeouts() Timeouts {
	c := &s.timeouts
	return Timeouts{PublishICE: c.publishICE.Load(), PublishIdle: c.publishIdle.Load(),
		PublishMedia: c.publishMedia.Load(), PlayICE: c.playICE.Load()}
}

// timedOut is the session supervisor's check, once per tick: a publish
// that has not connected within the ICE timeout, has connected but sent no
// RTP within the idle timeout, or whose RTP stopped for the media timeout
// gets the error that ends it; nil while none applies. Until its first
// packet only the first two apply, measured from the answer.
func (s *Session) timedOut(now time.Time) error {
	srv := s.srv
	since := now.Sub(s.answered)
	switch {
	case s.gotRTP.Load():
		if now.Sub(time.Unix(0, s.lastPacket.Load())) > srv.mediaTimeout {
			srv.timeouts.publishMedia.Add(1)
			return errors.New("ingest: no media")
		}
	case !s.connected.Load():
		if since > srv.iceTimeout {
			srv.timeouts.publishICE.Add(1)
			return fmt.Errorf("ingest: %w within limits.ice_timeout (%s)", ErrConnectTimeout, srv.iceTimeout)
		}
	case since > srv.idleTimeout:
		srv.timeouts.publishIdle.Add(1)
		return fmt.Errorf("ingest: %w within limits.publish_idle_timeout (%s)", ErrPublishIdle, srv.idleTimeout)
	}
	return nil
}

// neverPublished reports whether the session ended before any media came
// (ICE or idle timeout): its stream has nothing for a reconnect to continue.
func (s *Session) neverPublished() bool {
	return errors.Is(s.endErr, ErrConnectTimeout) || errors.Is(s.endErr, ErrPublishIdle)
}
