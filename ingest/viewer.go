package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/media"
)

const (
	// viewerPLIInterval rate-limits the keyframe requests one viewer's PLIs
	// and FIRs turn into: a lossy viewer must not make the publisher send
	// keyframes back to back for every other reader.
	viewerPLIInterval = time.Second
	// viewerLagFrames is the reader backlog (about 1.5 s of 30 fps video plus
	// 50 fps Opus) past which a viewer skips to the next keyframe instead of
	// sending stale media late.
	viewerLagFrames = 120
)

// Viewer is one WHEP playback (draft-ietf-wish-whep): a PeerConnection that
// sends a live Stream's H.264 and Opus to a viewer as they came, with no
// transcoding. It starts at a keyframe, turns the viewer's PLIs into
// (rate-limited) keyframe requests, skips to the next keyframe when it falls
// behind, and ends when the stream ends, the peer leaves or Close is called.
type Viewer struct {
	peer
	srv    *Server
	offer  playOffer
	stream *media.Stream
	pc     *webrtc.PeerConnection
	fw     *forwarder
	ice    iceSession // the WHEP PATCHes: trickle and ICE restart

	ctx       context.Context // cancelled by end
	cancel    context.CancelFunc
	connected chan struct{}
	connOnce  sync.Once

	wg sync.WaitGroup // RTCP readers, added before run starts
}

// playOffer is what checkPlayOffer learns from a WHEP offer.
type playOffer struct {
	iceUfrag     string
	video, audio bool // the offer has a receiving m-line of that kind
}

// checkPlayOffer validates a WHEP offer before anything is allocated: it
// must parse and have at least one audio or video m-line that can receive.
func checkPlayOffer(offer string) (playOffer, error) {
	var info playOffer
	sd, ufrag, err := parseOffer(offer)
	if err != nil {
		return info, err
	}
	info.iceUfrag = ufrag
	for _, md := range sd.MediaDescriptions {
		if md == nil || !accepted(md) {
			continue
		}
		if hasAttr(md, "sendonly") || hasAttr(md, "inactive") {
			continue
		}
		switch md.MediaName.Media {
		case "video":
			info.video = true
		case "audio":
			info.audio = true
		}
	}
	if !info.video && !info.audio {
		return info, fmt.Errorf("%w: no receiving audio or video m-line", ErrBadOffer)
	}
	return info, nil
}

// awaitPublish bounds how long a viewer or player waits for a stream whose
// publisher has been answered and has not sent its first frame yet
// (media.Registry.Await): ICE and DTLS on a slow network, a keyframe.
const awaitPublish = 5 * time.Second

// Play starts a WHEP playback of the live stream from an SDP offer and
// returns the viewer and the SDP answer (all our candidates included). It
// wraps media.ErrStreamNotFound when the stream is not live. On error nothing
// is left behind.
func (s *Server) Play(ctx context.Context, stream, offerSDP string) (*Viewer, string, error) {
	if err := media.ValidateName(stream); err != nil {
		return nil, "", err
	}
	info, err := checkPlayOffer(offerSDP)
	if err != nil {
		return nil, "", err
	}
	// A viewer that comes while the publisher connects (its stream is
	// claimed, its first frame not in yet) waits for it, bounded.
	actx, cancel := context.WithTimeout(ctx, awaitPublish)
	st, ok := s.reg.Await(actx, stream)
	cancel()
	if !ok {
		return nil, "", fmt.Errorf("%w: %q", media.ErrStreamNotFound, stream)
	}
	// Admission before anything is allocated: a refusal costs nothing.
	release, err := s.admitViewer(stream)
	if err != nil {
		return nil, "", err
	}
	defer release()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, "", ErrServerClosed
	}
	vctx, cancel := context.WithCancel(context.Background())
	v := &Viewer{peer: newPeer(stream, cancel), srv: s, offer: info, stream: st,
		ctx: vctx, cancel: cancel, connected: make(chan struct{})}
	answer, err := v.negotiate(ctx, offerSDP)
	if err != nil {
		v.abort()
		return nil, "", err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		v.abort()
		return nil, "", ErrServerClosed
	}
	s.viewers[v.id] = v
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		v.run()
	}()
	s.log.Info("ingest: playback started", "stream", stream, "session", v.id)
	return v, answer, nil
}

// Viewer returns the live playback session with that id.
func (s *Server) Viewer(id string) (*Viewer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.viewers[id]
	return v, ok
}

// Viewers returns how many playback sessions are live.
func (s *Server) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.viewers)
}

// PatchICE applies a WHEP PATCH (trickle or ICE restart, as WHIP's: see
// Session.PatchICE). A restart keeps the viewer's tracks and reader; the
// media it misses while ICE reconnects is repaired by the viewer's PLI.
func (v *Viewer) PatchICE(ctx context.Context, ifMatch, frag string) (*ICERestart, error) {
	if v.ctx.Err() != nil {
		return nil, ErrSessionNotFound
	}
	return v.ice.patch(ctx, ifMatch, frag)
}

// ETag is the entity-tag (quoted) of the viewer's current ICE session.
func (v *Viewer) ETag() string { return v.ice.ETag() }

// AddCandidate adds one remote ICE candidate; see Session.AddCandidate.
func (v *Viewer) AddCandidate(c webrtc.ICECandidateInit) error {
	if v.ctx.Err() != nil {
		return ErrSessionNotFound
	}
	return v.ice.addCandidate(c)
}

// h264SendFmtp is the H.264 the viewer is asked to receive: the stream's
// own profile-level-id (RFC 6184 §8.1) read from its SPS once it has one,
// else constrained baseline. pion matches it against the viewer's offer by
// profile_idc and packetization-mode and falls back to any H.264 the viewer
// takes: the stream goes out as it came either way.
func h264SendFmtp(cfg *media.Config) string {
	plid := "42e01f"
	if cfg != nil && len(cfg.SPS) >= 4 {
		plid = fmt.Sprintf("%02x%02x%02x", cfg.SPS[1], cfg.SPS[2], cfg.SPS[3])
	}
	return "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid
}

func (v *Viewer) negotiate(ctx context.Context, offer string) (string, error) {
	pc, err := v.srv.api.NewPeerConnection(v.srv.peerConfig(v.name))
	if err != nil {
		return "", fmt.Errorf("ingest: new peer connection: %w", err)
	}
	v.pc = pc
	v.ice.init(pc, v.id, v.offer.iceUfrag)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			v.connOnce.Do(func() { close(v.connected) })
		case webrtc.PeerConnectionStateFailed:
			v.end(errors.New("ingest: connection failed"))
		case webrtc.PeerConnectionStateClosed:
			v.end(errors.New("ingest: connection closed by peer"))
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	fw := &forwarder{}
	if t := v.stream.Track(media.KindVideo); t != nil && t.Codec == media.CodecH264 && v.offer.video {
		fmtp := h264SendFmtp(v.stream.LastConfig(t))
		fw.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: fmtp}, "video", "whipcast")
		if err != nil {
			return "", err
		}
	}
	if t := v.stream.Track(media.KindAudio); t != nil && t.Codec == media.CodecOpus && v.offer.audio {
		fw.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "whipcast")
		if err != nil {
			return "", err
		}
	}
	if fw.video == nil && fw.audio == nil {
		return "", fmt.Errorf("%w: the stream has no track the offer can receive", ErrBadOffer)
	}
	for _, t := range []*webrtc.TrackLocalStaticRTP{fw.video, fw.audio} {
		if t == nil {
			continue
		}
		sender, err := pc.AddTrack(t)
		if err != nil {
			return "", fmt.Errorf("ingest: add track: %w", err)
		}
		isVideo := t == fw.video
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			v.readRTCP(sender, isVideo)
		}()
	}
	v.fw = fw
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if fw.video != nil && !answerHas(answer.SDP, "video", "h264/90000") {
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

// readRTCP turns the viewer's PLIs and FIRs into keyframe requests, at most
// one per viewerPLIInterval. Reading also feeds the NACK responder.
func (v *Viewer) readRTCP(sender *webrtc.RTPSender, video bool) {
	var last time.Time
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		if !video {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if now := time.Now(); now.Sub(last) >= viewerPLIInterval {
					last = now
					v.stream.RequestKeyframe()
				}
			}
		}
	}
}

// abort undoes a Play that failed before the viewer ran.
func (v *Viewer) abort() {
	if v.pc != nil {
		_ = v.pc.Close()
	}
	v.wg.Wait()
	v.end(ErrSessionClosed)
	close(v.done)
}

// run waits for the connection, then forwards the stream's frames until the
// viewer ends.
func (v *Viewer) run() {
	defer v.teardown()
	t := time.NewTimer(v.srv.iceTimeout) // ends a viewer whose ICE/DTLS never completes
	select {
	case <-v.connected:
		t.Stop()
	case <-v.ctx.Done():
		t.Stop()
		return
	case <-t.C:
		v.srv.timeouts.playICE.Add(1)
		v.end(fmt.Errorf("ingest: viewer: %w within limits.ice_timeout (%s)", ErrConnectTimeout, v.srv.iceTimeout))
		return
	case <-v.stream.Done():
		t.Stop()
		v.end(media.ErrStreamEnded)
		return
	}
	r := v.stream.SubscribeSkipping("whep:"+v.id, 0)
	defer func() { r.Close() }()
	v.fw.waitKey = v.fw.video != nil
	for {
		f, err := r.Read(v.ctx)
		switch {
		case errors.Is(err, media.ErrReaderSkipped):
			// Fell behind: the stream skipped to its next keyframe.
			v.fw.waitKey = v.fw.video != nil
			continue
		case err != nil:
			v.end(err)
			return
		}
		if v.fw.video != nil && !v.fw.waitKey && r.Len() > viewerLagFrames {
			v.fw.waitKey = true
			v.stream.RequestKeyframe()
		}
		v.fw.write(f)
	}
}

func (v *Viewer) teardown() {
	_ = v.pc.Close()
	v.wg.Wait()
	v.srv.mu.Lock()
	if v.srv.viewers[v.id] == v {
		delete(v.srv.viewers, v.id)
		v.srv.endedView.add(v.id, v.name, time.Now())
	}
	v.srv.mu.Unlock()
	v.srv.log.Info("ingest: playback ended", "stream", v.name, "session", v.id, "reason", v.endErr)
	close(v.done)
}
