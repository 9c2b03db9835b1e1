package ingest

import (
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// Stats are one publish session's receive counters, for the API and
// metrics. Counters only grow during a session.
type Stats struct {
	// Stream is the stream name.
	Stream string
	// RTPPackets and RTPBytes count the RTP packets (and their bytes, headers
	// included) received on all tracks.
	RTPPackets, RTPBytes uint64
	// PacketsMissing counts the sequence numbers found missing on arrival
	// (lost before repair), on all tracks.
	PacketsMissing uint64
	// PacketsLost counts packets declared lost after NACK/RTX had their
	// chance (a hole the reorder buffer gave up on: lost after repair).
	PacketsLost uint64
	// PacketsRepaired counts holes filled in time, by a retransmission or
	// by a reordered original.
	PacketsRepaired uint64
	// Retransmissions counts the retransmitted packets received (RTX
	// packets; a sender without RTX resends on the media stream, and its
	// resends are counted in PacketsRepaired and PacketsLate only).
	Retransmissions uint64
	// PacketsLate counts packets that came after their hole was given up,
	// and duplicates.
	PacketsLate uint64
	// NACKs counts the sequence numbers requested from the publisher in
	// RTCP NACKs (a packet requested three times counts three), and
	// NACKPackets the RTCP NACK messages that carried them.
	NACKs, NACKPackets uint64
	// RTT is the round trip measured from NACK to repair (smoothed; the
	// initial guess until a repair was measured).
	RTT time.Duration
	// FramesDropped counts video frames not passed on: broken by a lost
	// packet, or waiting for a keyframe after one.
	FramesDropped uint64
	// FreezeTime is the total time without video output after a loss,
	// from the first frame dropped to the next frame passed on (the
	// keyframe that ended it).
	FreezeTime time.Duration
	// PLIs counts Picture Loss Indications sent to the publisher.
	PLIs uint64
	// Keyframes counts video keyframes received.
	Keyframes uint64
	// KeyframeInterval is the time between the last two keyframes (0 before
	// the second).
	KeyframeInterval time.Duration
}

// sessionStats are updated on the hot path with atomics only.
type sessionStats struct {
	packets, bytes, lost, plis, keyframes atomic.Uint64
	missing, repaired, rtx, late          atomic.Uint64
	nacks, nackPkts, framesDropped        atomic.Uint64
	kfInterval, freeze, rtt               atomic.Int64
}

// add publishes a reorder buffer's counters: what grew since pub (what was
// published last time), which it then updates. Only the track reader that
// owns c and pub calls it.
func (st *sessionStats) add(pub, c *reorderCounters, rtt time.Duration) {
	st.missing.Add(c.missing - pub.missing)
	st.lost.Add(c.lost - pub.lost)
	st.repaired.Add(c.repaired - pub.repaired)
	st.rtx.Add(c.rtx - pub.rtx)
	st.late.Add(c.late - pub.late)
	st.nacks.Add(c.nacks - pub.nacks)
	st.nackPkts.Add(c.nackPkts - pub.nackPkts)
	if c.nackPkts > 0 {
		st.rtt.Store(int64(rtt))
	}
	*pub = *c
}

// keyframe records a keyframe arriving at t (unix nanos); prev is the
// previous keyframe's arrival (or the session start).
func (st *sessionStats) keyframe(t, prev int64) {
	if st.keyframes.Add(1) > 1 {
		st.kfInterval.Store(t - prev)
	}
}

// Stats returns the counters of every live publish session.
func (s *Server) Stats() []Stats {
	s.mu.Lock()
	sessions := make([]*Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	out := make([]Stats, 0, len(sessions))
	for _, ss := range sessions {
		out = append(out, ss.Stats())
	}
	return out
}

// StreamStats returns the counters of the session publishing stream.
func (s *Server) StreamStats(stream string) (Stats, bool) {
	s.mu.Lock()
	var found *Session
	for _, ss := range s.sessions {
		if ss.name == stream {
			found = ss
			break
		}
	}
	s.mu.Unlock()
	if found == nil {
		return Stats{}, false
	}
	return found.Stats(), true
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	st := &s.stats
	return Stats{
		Stream: s.name, RTPPackets: st.packets.Load(), RTPBytes: st.bytes.Load(),
		PacketsMissing: st.missing.Load(), PacketsLost: st.lost.Load(), PacketsRepaired: st.repaired.Load(),
		Retransmissions: st.rtx.Load(), PacketsLate: st.late.Load(),
		NACKs: st.nacks.Load(), NACKPackets: st.nackPkts.Load(), RTT: time.Duration(st.rtt.Load()),
		FramesDropped: st.framesDropped.Load(), FreezeTime: time.Duration(st.freeze.Load()),
		PLIs: st.plis.Load(), Keyframes: st.keyframes.Load(),
		KeyframeInterval: time.Duration(st.kfInterval.Load()),
	}
}

// NACKsSent counts the RTCP NACK packets sent to publishers (all sessions
// since start): each asks for retransmission of lost packets.
func (s *Server) NACKsSent() uint64 { return s.nacks.Load() }

// nackCounter is an interceptor that counts outgoing NACKs. It is registered
// before pion's NACK generator, so the generator's writes pass through it.
type nackCounter struct {
	interceptor.NoOp
	n *atomic.Uint64
}

type nackCounterFactory struct{ n *atomic.Uint64 }

func (f nackCounterFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &nackCounter{n: f.n}, nil
}

func (c *nackCounter) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attrs interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if _, ok := p.(*rtcp.TransportLayerNack); ok {
				c.n.Add(1)
			}
		}
		return w.Write(pkts, attrs)
	})
}
