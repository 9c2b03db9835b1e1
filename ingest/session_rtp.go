package ingest

// A Session's media side: RTP read per track into frames, RTCP per receiver.

import (
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/media"
)

// readRTP is the per-track hot path: read, reorder, depacketize, time, write.
//
// What reaches the outputs while a reference is missing: the reorder
// buffer NACKs a hole the moment it sees it and holds the packets behind it
// for a wait sized from the measured round trip. A hole repaired in time
// costs nothing but that delay. A hole given up on makes the depacketizer
// drop the unit it was in and every video frame after it until the next
// keyframe (frames that reference a lost picture would decode to garbage),
// and ask for a keyframe (PLI, rate-limited); the time without video is
// counted as freeze time. Audio is only reordered: a lost Opus packet is a
// lost 20 ms, and the frames around it are kept.
func (s *Session) readRTP(idx int, tr *webrtc.TrackRemote) {
	track := s.stream.Tracks[idx]
	var out packetSink
	var rb *reorderBuffer
	finish := func() {} // at the end of the track, after the last packet
	if idx == trackVideo {
		dp := newH264Depacketizer(nil, s.requestKeyframe)
		var arrival time.Time
		var frozeAt time.Time // first frame dropped since the last one emitted
		dp.emit = func(u h264Unit) {
			dts, wall := s.tl.Frame(idx, u.ts, arrival)
			if u.keyframe {
				t := arrival.UnixNano()
				s.stats.keyframe(t, s.lastKey.Swap(t))
			}
			if !frozeAt.IsZero() {
				s.stats.freeze.Add(int64(arrival.Sub(frozeAt)))
				frozeAt = time.Time{}
			}
			s.write(&media.Frame{Track: track, DTS: dts, PTS: dts, Keyframe: u.keyframe, Config: u.config, Data: u.data, Time: wall})
		}
		dropped := uint64(0)
		out = func(ts uint32, marker bool, payload []byte, gap bool, at time.Time) {
			arrival = at
			dp.push(ts, marker, payload, gap)
			if dp.dropped != dropped {
				s.stats.framesDropped.Add(dp.dropped - dropped)
				dropped = dp.dropped
				// Frames dropped before the first keyframe are a slow
				// start, not a freeze.
				if frozeAt.IsZero() && s.stats.keyframes.Load() > 0 {
					frozeAt = at
				}
			}
		}
		// A publish that ends frozen counts the freeze up to its last packet.
		finish = func() {
			if !frozeAt.IsZero() {
				s.stats.freeze.Add(int64(arrival.Sub(frozeAt)))
			}
		}
		rb = newReorderBuffer(out)
		rb.nack = func(seqs []uint16) {
			ssrc := uint32(tr.SSRC())
			_ = s.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}})
		}
	} else {
		var arrival time.Time
		dp := &opusDepacketizer{slab: slab{max: audioSlabSize}}
		dp.emit = func(ts uint32, data []byte) {
			dts, wall := s.tl.Frame(idx, ts, arrival)
			s.write(&media.Frame{Track: track, DTS: dts, PTS: dts, Keyframe: true, Data: data, Time: wall})
		}
		out = func(ts uint32, _ bool, payload []byte, _ bool, at time.Time) {
			arrival = at
			dp.push(ts, payload)
		}
		rb = newReorderBufferSize(out, reorderAudioSlots)
		rb.fixedWait = reorderAudioWait
	}
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var pub reorderCounters // what has been added to s.stats
	// While packets are held, reads time out every reorderTick so holes are
	// given up (and re-requested) even when the publisher stops sending.
	deadline := false
	first := true
	for {
		if rb.held > 0 {
			_ = tr.SetReadDeadline(time.Now().Add(reorderTick))
			deadline = true
		} else if deadline {
			_ = tr.SetReadDeadline(time.Time{})
			deadline = false
		}
		n, attrs, err := tr.Read(buf)
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				rb.tick(time.Now())
			} else {
				// The session is ending: what is held and complete still
				// goes out, before the stream is unpublished.
				rb.flushAll()
				finish()
			}
			if rb.changed {
				rb.changed = false
				s.stats.add(&pub, &rb.c, rb.srtt)
			}
			if deadline && rb.held == 0 {
				_ = tr.SetReadDeadline(time.Time{})
				deadline = false
			}
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				continue
			}
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		now := time.Now()
		s.lastPacket.Store(now.UnixNano())
		if first {
			first = false
			s.gotRTP.Store(true)
		}
		s.stats.packets.Add(1)
		s.stats.bytes.Add(uint64(n))
		// pion de-encapsulates RTX into this track with the original
		// sequence number and marks it with the RTX attributes.
		rtx := attrs != nil && attrs.Get(webrtc.AttributeRtxSsrc) != nil
		rb.push(pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload, rtx, now)
		if rb.changed {
			rb.changed = false
			s.stats.add(&pub, &rb.c, rb.srtt)
		}
	}
}

// readRTCP feeds Sender Reports to the timeline, which checks them against
// the RTP clock and arrival (see Timeline). Reading RTCP also lets the
// receiver-report interceptor see the SRs it answers.
func (s *Session) readRTCP(idx int, recv *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	srs := newSRLog(s.srv.log, "session", s.id, "track", idx)
	defer srs.done()
	for {
		n, _, err := recv.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		now := time.Now()
		for _, p := range pkts {
			sr, ok := p.(*rtcp.SenderReport)
			if !ok {
				continue
			}
			s.tl.SenderReport(idx, sr.NTPTime, sr.RTPTime, now)
			accepted, rejected := s.tl.TrackSRStats(idx)
			srs.observe(now, accepted, rejected, ntpToTime(sr.NTPTime), sr.RTPTime)
		}
	}
}

// pliRetry is how long an unanswered PLI is waited for before another:
// three measured round trips and an encoder's reaction time, within
// [pliMinRetry, pliMinInterval].
func (s *Session) pliRetry() time.Duration {
	rtt := time.Duration(s.stats.rtt.Load())
	if rtt <= 0 {
		rtt = rttInitial
	}
	return min(max(3*rtt+100*time.Millisecond, pliMinRetry), pliMinInterval)
}
