package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/media"
)

const (
	trackVideo = 0 // index in Stream.Tracks
	trackAudio = 1
)

// Session is one WHIP publish: a PeerConnection receiving H.264 and Opus and
// writing them as Frames to a Stream. It ends when the peer leaves, ICE or
// DTLS fail, media stops for MediaTimeout, or Close is called.
type Session struct {
	peer
	srv    *Server
	offer  offerInfo
	stream *media.Stream
	pc     *webrtc.PeerConnection
	tl     *Timeline
	ice    iceSession // the WHIP PATCHes: trickle and ICE restart

	// writeMu serialises Stream.Write (single-writer) between the video and
	// audio reader goroutines. A mutex rather than a merging goroutine: it
	// costs no channel hop or extra goroutine per frame, keeps arrival order,
	// and is uncontended at ~80 frames/s.
	writeMu   sync.Mutex
	announced bool // under writeMu: the stream was announced (first frame)

	kfReq      chan struct{} // keyframe wanted (reader, gap, timer)
	videoSSRC  atomic.Uint32
	lastPacket atomic.Int64 // unix nanos
	lastKey    atomic.Int64 // unix nanos of the last video keyframe emitted
	answered   time.Time    // set before run starts (timeouts.go)
	connected  atomic.Bool  // the PeerConnection reached connected
	gotRTP     atomic.Bool  // an RTP packet has arrived
	stats      sessionStats

	mu      sync.Mutex // guards closing and wg.Add against teardown
	closing bool
	wg      sync.WaitGroup // track and RTCP readers
	haveVid bool
	haveAud bool
	// resumed: this session took over a held stream (media.Registry.Hold).
	resumed bool
}

func newSession(srv *Server, name string, info offerInfo) *Session {
	now := time.Now().UnixNano()
	s := &Session{
		peer:  newPeer(name, nil),
		srv:   srv,
		offer: info,
		tl:    NewTimeline(90000, 48000),
		kfReq: make(chan struct{}, 1),
	}
	s.lastPacket.Store(now)
	s.lastKey.Store(now)
	return s
}

// requestKeyframe is the Stream's keyframe hook. It must not block: it may
// be called before the session runs (OnPublish listeners subscribing).
func (s *Session) requestKeyframe() {
	select {
	case s.kfReq <- struct{}{}:
	default:
	}
}

// negotiate creates the PeerConnection and returns the answer once ICE
// gathering is complete.
func (s *Session) negotiate(ctx context.Context, offer string) (string, error) {
	pc, err := s.srv.api.NewPeerConnection(s.srv.peerConfig(s.name))
	if err != nil {
		return "", fmt.Errorf("ingest: new peer connection: %w", err)
	}
	s.pc = pc
	s.ice.init(pc, s.id, s.offer.iceUfrag)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return "", fmt.Errorf("ingest: add transceiver: %w", err)
		}
	}
	pc.OnTrack(s.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			s.connected.Store(true)
		case webrtc.PeerConnectionStateFailed:
			s.end(errors.New("ingest: connection failed"))
		case webrtc.PeerConnectionStateClosed:
			s.end(errors.New("ingest: connection closed by peer"))
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if !answerHas(answer.SDP, "video", "h264/90000") {
		return "", ErrNoVideoCodec
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("ingest: set local description: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultGatherTimeout)
		defer cancel()
	}
	if err := waitGathered(ctx, gathered, pc.GetConfiguration()); err != nil {
		return "", err
	}
	return pc.LocalDescription().SDP, nil
}

// abort undoes a Publish that failed before the session ran.
func (s *Session) abort() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	if s.pc != nil {
		_ = s.pc.Close()
	}
	s.wg.Wait()
	if s.stream != nil {
		if s.resumed {
			// The held stream's window goes on for another try.
			s.srv.reg.Hold(s.stream, "resume failed")
		} else {
			s.srv.reg.Unpublish(s.stream)
		}
	}
	s.end(ErrSessionClosed) // the reason, unless one was given; nothing watches ended here
	close(s.done)
}

func (s *Session) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	idx := -1
	switch {
	case tr.Kind() == webrtc.RTPCodecTypeVideo && !s.haveVid &&
		strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeH264):
		s.haveVid = true
		idx = trackVideo
		s.videoSSRC.Store(uint32(tr.SSRC()))
	case tr.Kind() == webrtc.RTPCodecTypeAudio && !s.haveAud &&
		strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeOpus):
		s.haveAud = true
		idx = trackAudio
	}
	if idx < 0 {
		s.srv.log.Warn("ingest: ignoring extra track", "session", s.id, "kind", tr.Kind().String(), "codec", tr.Codec().MimeType)
		return
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.readRTP(idx, tr)
	}()
	go func() {
		defer s.wg.Done()
		s.readRTCP(idx, recv)
	}()
	if idx == trackVideo {
		s.requestKeyframe()
	}
}

func (s *Session) write(f *media.Frame) {
	s.writeMu.Lock()
	if !s.announced {
		// The first frame: the stream goes public and its consumers
		// subscribe before it is written (media.Registry.Claim).
		s.announced = true
		s.srv.reg.Announce(s.stream)
	}
	s.stream.Write(f)
	s.writeMu.Unlock()
}

// run supervises the session: keyframe requests (rate-limited), the
// keyframe-interval timer, the media timeout, and teardown.
func (s *Session) run() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastPLI time.Time
	kfi := s.srv.keyframeInterval
	// Ask a little early so the keyframe arrives within the interval.
	early := min(kfi/4, 300*time.Millisecond)
	// A PLI goes out at once unless the last one is still unanswered (no
	// keyframe since) and younger than pliRetry (a loss: the output
	// recovers one round trip later, not at the next rate-limit tick) or
	// pliMinInterval (the keyframe timer: a sender that ignores PLI is not
	// asked more often than that), and never within pliMinGap of the last
	// one, which the publisher would drop.
	mayPLI := func(now time.Time, urgent bool) bool {
		wait := pliMinInterval
		if urgent {
			wait = s.pliRetry()
		}
		since := now.Sub(lastPLI)
		return since >= pliMinGap && (since >= wait || s.lastKey.Load() > lastPLI.UnixNano())
	}
	// gap fires when a request held back by pliMinGap may go, so it does
	// not wait for the next tick.
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	defer gap.Stop()
	sendPLI := func(now time.Time) {
		ssrc := s.videoSSRC.Load()
		if ssrc == 0 {
			return // no video yet; the request is repeated when it starts
		}
		lastPLI = now
		s.stats.plis.Add(1)
		_ = s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
	// retries counts the repeats left of the last urgent PLI: one that no
	// keyframe answers within pliMinInterval is sent again (the PLI or the
	// keyframe was lost, or the sender dropped a request too close to
	// another), up to pliRetries times, at the pace the keyframe timer asks
	// a silent sender; a sender that ignores PLI gets that one more and no
	// other. repeat marks the pending request as one.
	pending, urgent, repeat, retries := false, false, false, 0
	for {
		select {
		case <-s.ended:
			s.teardown()
			return
		case <-s.kfReq:
			pending, urgent, repeat = true, true, false
		case <-gap.C:
		case now := <-tick.C:
			if err := s.timedOut(now); err != nil {
				s.end(err)
				continue
			}
			if now.Sub(time.Unix(0, s.lastKey.Load())) >= kfi-early {
				pending = true
			}
		}
		now := time.Now()
		answered := s.lastKey.Load() > lastPLI.UnixNano()
		if answered {
			retries = 0
		}
		if !pending && retries > 0 && now.Sub(lastPLI) >= pliMinInterval {
			pending, urgent, repeat = true, true, true
		}
		if !pending || s.videoSSRC.Load() == 0 {
			continue
		}
		if mayPLI(now, urgent) {
			switch {
			case repeat:
				retries--
			case urgent:
				retries = pliRetries
			default:
				retries = 0
			}
			sendPLI(now)
			pending, urgent, repeat = false, false, false
			if retries > 0 {
				gap.Reset(pliMinInterval)
			}
		} else if urgent {
			wait := pliMinGap
			if !answered {
				wait = max(wait, s.pliRetry())
			}
			gap.Reset(wait - now.Sub(lastPLI))
		}
	}
}

func (s *Session) teardown() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	_ = s.pc.Close()
	s.wg.Wait()
	s.release()
	s.srv.remove(s)
	s.srv.log.Info("ingest: publish ended", "stream", s.name, "session", s.id, "reason", s.endErr)
	close(s.done)
}

// PatchICE applies a WHIP PATCH on the session (RFC 9725 §4.3): ifMatch is
// the request's If-Match ("" when it has none), frag its
// application/trickle-ice-sdpfrag body.
//
//   - If-Match "*" is an ICE restart (§4.3.2), and so is a fragment with new
//     ice-ufrag/ice-pwd under the current ETag: the gateway restarts its ICE
//     agent on the same PeerConnection and returns its new credentials and
//     candidates and the new ETag. DTLS, SRTP, the tracks and the stream go
//     on: no new stream, the same timeline.
//   - Otherwise a trickle (§4.3.1): the fragment's candidates are added and
//     the result is nil.
//
// Errors: ErrETagMismatch (412) for an If-Match naming another ICE session,
// e.g. a trickle sent before a restart; ErrBadTrickle (400) for a malformed
// fragment or restart credentials; ErrICERestart (422) for new credentials
// without If-Match; ErrSessionNotFound once the session ended.
func (s *Session) PatchICE(ctx context.Context, ifMatch, frag string) (*ICERestart, error) {
	select {
	case <-s.ended:
		return nil, ErrSessionNotFound
	default:
	}
	return s.ice.patch(ctx, ifMatch, frag)
}

// ETag is the entity-tag (quoted) of the session's current ICE session: the
// 201's, then each restart's.
func (s *Session) ETag() string { return s.ice.ETag() }

// AddCandidate adds one remote ICE candidate (an RTCIceCandidateInit, as
// the room socket relays it); an empty candidate ends the candidates. A
// usernameFragment other than the current ICE session's is ErrICERestart.
func (s *Session) AddCandidate(c webrtc.ICECandidateInit) error {
	select {
	case <-s.ended:
		return ErrSessionNotFound
	default:
	}
	return s.ice.addCandidate(c)
}
