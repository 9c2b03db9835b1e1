package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// ICERestart is the gateway's side of an ICE restart (RFC 9725 §4.3.2): the
// body of the 200 (application/trickle-ice-sdpfrag with the new ice-ufrag,
// ice-pwd and a candidate of the gateway, see answerFragment) and the ETag that names the new
// ICE session, which later trickle PATCHes put in If-Match.
type ICERestart struct {
	Fragment string
	ETag     string
}

// iceSession is the ICE side of one WHIP or WHEP resource (RFC 9725 §4.3):
// the ICE session the client's PATCHes address, named by an ETag that
// changes with every restart, on the one PeerConnection of the resource. mu
// serialises trickles and restarts, so a trickle checked against one ICE
// session's ETag cannot land in the next, and two restarts cannot
// interleave their offer/answer.
type iceSession struct {
	mu    sync.Mutex
	pc    *webrtc.PeerConnection
	id    string
	ufrag string // the client's ice-ufrag of the current ICE session
	gen   int    // restarts done
	etag  string
	// ice is the PeerConnection's ICE configuration: its TURN servers and
	// transport policy decide how long a restart's gathering waits.
	ice webrtc.Configuration
}

func (c *iceSession) init(pc *webrtc.PeerConnection, id, ufrag string) {
	c.pc, c.id, c.ufrag, c.etag = pc, id, ufrag, etag(id)
	c.ice = pc.GetConfiguration()
}

// ETag is the entity-tag of the current ICE session, quoted.
func (c *iceSession) ETag() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.etag
}

// patch applies a PATCH body: an ICE restart when ifMatch is "*", or when it
// names the current ICE session and the fragment carries new credentials; a
// trickle otherwise. See Session.PatchICE.
func (c *iceSession) patch(ctx context.Context, ifMatch, frag string) (*ICERestart, error) {
	f, err := parseTrickle(frag)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ifMatch != "" && ifMatch != "*" && ifMatch != c.etag {
		return nil, ErrETagMismatch
	}
	newCreds := f.iceUfrag != "" && f.iceUfrag != c.ufrag
	if ifMatch == "*" || (ifMatch != "" && newCreds) {
		return c.restart(ctx, f)
	}
	if newCreds && c.ufrag != "" {
		return nil, fmt.Errorf("%w: the fragment's ice-ufrag is not the ICE session's, and an ICE restart needs If-Match: *", ErrICERestart)
	}
	return nil, addFragment(c.pc, c.ufrag, f)
}

// addCandidate adds one candidate of the current ICE session (room socket).
func (c *iceSession) addCandidate(cand webrtc.ICECandidateInit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return addCandidate(c.pc, c.ufrag, cand)
}

// restart runs an answerer-side ICE restart (RFC 8839 §4.4.1.1.1) on the
// PeerConnection: the client's last offer with the fragment's credentials
// and no candidates is applied again, which makes pion restart its ICE
// agent (new local ufrag/pwd, candidates gathered anew) while DTLS, SRTP
// and the tracks go on; the answer's new credentials and candidates go
// back. Nothing else of the offer is renegotiated (RFC 9725 §4.3.2). A
// refused restart leaves the session as it was where pion allows; one that
// breaks it ends it through ICE consent, as the RFC asks. c.mu is held.
func (c *iceSession) restart(ctx context.Context, f trickleFragment) (*ICERestart, error) {
	if err := checkICECredentials(f.iceUfrag, f.icePwd); err != nil {
		return nil, err
	}
	if f.iceUfrag == c.ufrag {
		return nil, fmt.Errorf("%w: an ICE restart needs a new ice-ufrag and ice-pwd", ErrBadTrickle)
	}
	// A candidate that would be refused is refused before the restart, so
	// the refusal keeps the ICE session (§4.3.2).
	for _, cand := range f.candidates {
		if _, err := ice.UnmarshalCandidate(cand.candidate); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadTrickle, err)
		}
	}
	rd := c.pc.RemoteDescription()
	if rd == nil {
		return nil, ErrSessionNotFound
	}
	// The gateway's side of the path that worked, read before the restart
	// forgets it.
	was := selectedLocal(c.pc)
	offer, err := restartOffer(rd.SDP, f.iceUfrag, f.icePwd)
	if err != nil {
		return nil, c.failed(err)
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, c.failed(err)
	}
	// From here on the ICE session is the new one, whatever else fails.
	c.ufrag = f.iceUfrag
	c.gen++
	c.etag = etag(c.id + "." + strconv.Itoa(c.gen))
	if err := addFragment(c.pc, c.ufrag, f); err != nil {
		return nil, err
	}
	answer, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return nil, c.failed(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(answer); err != nil {
		return nil, c.failed(err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultGatherTimeout)
		defer cancel()
	}
	if err := waitGathered(ctx, gathered, c.ice); err != nil {
		return nil, c.failed(err)
	}
	frag, err := answerFragment(c.pc.LocalDescription().SDP, was)
	if err != nil {
		return nil, c.failed(err)
	}
	return &ICERestart{Fragment: frag, ETag: c.etag}, nil
}

// failed names a restart's failure: ErrSessionNotFound when the session
// ended under it (its PeerConnection closed), else the error as ours (500).
func (c *iceSession) failed(err error) error {
	if c.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return ErrSessionNotFound
	}
	return fmt.Errorf("ingest: ICE restart: %w", err)
}

// checkICECredentials checks an ice-ufrag and ice-pwd against RFC 8839
// §5.4: 4 to 256 and 22 to 256 ice-chars (ALPHA / DIGIT / "+" / "/").
func checkICECredentials(ufrag, pwd string) error {
	switch {
	case ufrag == "" || pwd == "":
		return fmt.Errorf("%w: an ICE restart needs ice-ufrag and ice-pwd", ErrBadTrickle)
	case len(ufrag) < 4 || len(ufrag) > 256 || !iceChars(ufrag):
		return fmt.Errorf("%w: ice-ufrag must be 4 to 256 ice-chars", ErrBadTrickle)
	case len(pwd) < 22 || len(pwd) > 256 || !iceChars(pwd):
		return fmt.Errorf("%w: ice-pwd must be 22 to 256 ice-chars", ErrBadTrickle)
	}
	return nil
}

func iceChars(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '+' || b == '/') {
			return false
		}
	}
	return true
}

// restartOffer is offer with every ice-ufrag and ice-pwd replaced and its
// candidates removed: the offer the client would have sent for the restart
// had WHIP a renegotiation (RFC 9725 §4.3.2 says all but ICE stays as it
// was). The fragment's candidates are added after it.
func restartOffer(offer, ufrag, pwd string) (string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return "", err
	}
	fix := func(attrs []sdp.Attribute) []sdp.Attribute {
		out := attrs[:0]
		for _, a := range attrs {
			switch a.Key {
			case "ice-ufrag":
				a.Value = ufrag
			case "ice-pwd":
				a.Value = pwd
			case "candidate", "end-of-candidates":
				continue
			}
			out = append(out, a)
		}
		return out
	}
	sd.Attributes = fix(sd.Attributes)
	for _, md := range sd.MediaDescriptions {
		md.Attributes = fix(md.Attributes)
	}
	b, err := sd.Marshal()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// selectedLocal is the gateway's candidate of the ICE session's selected
// pair, or nil before one was selected.
func selectedLocal(pc *webrtc.PeerConnection) *webrtc.ICECandidate {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return nil
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return nil
	}
	return pair.Local
}

// answerFragment is the trickle-ice-sdpfrag of a restart's 200 (RFC 8840
// §9, as in RFC 9725 §4.3.2): the answer's ice-ufrag and ice-pwd at session
// level, then its first media section (the bundle's transport: max-bundle)
// with its mid and one candidate, and end-of-candidates. Lines end in CRLF,
// as clients that match `\r\n` expect.
//
// One candidate, not all: the RFC makes them optional in the 200, and
// medooze's whip-whep (1.2.0, the JavaScript client that restarts ICE)
// joins the candidates it reads with commas into its remote description, so
// Chromium refuses any answer with two or more. The one given is the
// gateway's side of the pair the ICE session was using (was: the same
// address, port and transport under the new credentials; they do not
// change across a restart, the muxes stay on one port), or else the
// highest-priority component-1 candidate. A client that also needs the
// others (ICE-TCP from a network that now blocks UDP) gets them with a new
// POST.
func answerFragment(answer string, was *webrtc.ICECandidate) (string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return "", err
	}
	if len(sd.MediaDescriptions) == 0 {
		return "", errors.New("answer without media")
	}
	md := sd.MediaDescriptions[0]
	get := func(key string) string {
		if v, ok := md.Attribute(key); ok {
			return v
		}
		v, _ := sd.Attribute(key)
		return v
	}
	ufrag, pwd, mid := get("ice-ufrag"), get("ice-pwd"), get("mid")
	if ufrag == "" || pwd == "" {
		return "", errors.New("answer without ICE credentials")
	}
	best, bestPrio, same := "", uint64(0), ""
	for _, a := range md.Attributes {
		if a.Key != "candidate" {
			continue
		}
		// foundation component transport priority address port typ ...
		fs := strings.Fields(a.Value)
		if len(fs) < 8 || fs[1] != "1" {
			continue // RTCP is muxed: component 2 is never used
		}
		if prio, err := strconv.ParseUint(fs[3], 10, 32); err == nil && (best == "" || prio > bestPrio) {
			best, bestPrio = a.Value, prio
		}
		if was != nil && same == "" && strings.EqualFold(fs[2], was.Protocol.String()) &&
			fs[4] == was.Address && fs[5] == strconv.Itoa(int(was.Port)) {
			same = a.Value
		}
	}
	if same != "" {
		best = same
	}
	var b strings.Builder
	b.WriteString("a=ice-ufrag:" + ufrag + "\r\n")
	b.WriteString("a=ice-pwd:" + pwd + "\r\n")
	b.WriteString("m=" + md.MediaName.Media + " 9 " + strings.Join(md.MediaName.Protos, "/") + " " + strings.Join(md.MediaName.Formats, " ") + "\r\n")
	if mid != "" {
		b.WriteString("a=mid:" + mid + "\r\n")
	}
	if best != "" {
		b.WriteString("a=candidate:" + best + "\r\n")
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String(), nil
}
