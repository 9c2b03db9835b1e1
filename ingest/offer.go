package ingest

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// maxOfferSize bounds an SDP offer (the WHIP handler also limits the body).
const maxOfferSize = 64 << 10

// offerInfo is what checkOffer learns from a publish offer.
type offerInfo struct {
	iceUfrag string // session-level or first media-level ice-ufrag
}

// checkOffer validates a WHIP publish offer (RFC 9725 §4.2) before anything
// is allocated for it: it must parse, and carry a video m-line offering
// H.264 and an audio m-line offering Opus, both sending.
func checkOffer(offer string) (offerInfo, error) {
	var info offerInfo
	sd, ufrag, err := parseOffer(offer)
	if err != nil {
		return info, err
	}
	info.iceUfrag = ufrag
	var video, audio, videoSeen, audioSeen bool
	for _, md := range sd.MediaDescriptions {
		if md == nil {
			continue
		}
		kind := md.MediaName.Media
		if kind != "video" && kind != "audio" {
			continue
		}
		if !accepted(md) {
			continue // rejected m-line
		}
		if hasAttr(md, "recvonly") || hasAttr(md, "inactive") {
			continue // not published
		}
		want := "h264/90000"
		if kind == "audio" {
			want = "opus/48000"
		}
		found := hasCodec(md, want)
		if kind == "video" {
			videoSeen = true
			video = video || found
		} else {
			audioSeen = true
			audio = audio || found
		}
	}
	switch {
	case !videoSeen && !audioSeen:
		return info, fmt.Errorf("%w: no sending audio or video m-line", ErrBadOffer)
	case !video:
		return info, ErrNoVideoCodec
	case !audio:
		return info, ErrNoAudioCodec
	}
	return info, nil
}

// hasCodec reports whether an m-line has an rtpmap of codec ("h264/90000":
// name and clock rate, lower case), channels aside.
func hasCodec(md *sdp.MediaDescription, codec string) bool {
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		// a=rtpmap:<pt> <name>/<clock>[/<channels>]
		_, enc, ok := strings.Cut(a.Value, " ")
		enc = strings.ToLower(strings.TrimSpace(enc))
		if ok && (enc == codec || strings.HasPrefix(enc, codec+"/")) {
			return true
		}
	}
	return false
}

// answerHas reports whether an SDP answer accepts codec on an m-line of
// kind (a port other than 0, or bundle-only): the parsed answer, not a
// search of its text, which an rtpmap on a rejected m-line or in another
// m-line would fool.
func answerHas(answer, kind, codec string) bool {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return false
	}
	for _, md := range sd.MediaDescriptions {
		if md == nil || md.MediaName.Media != kind {
			continue
		}
		if accepted(md) && hasCodec(md, codec) {
			return true
		}
	}
	return false
}

// parseOffer is what every offer (WHIP, WHEP) goes through first: not
// empty, at most maxOfferSize, SDP that parses; and its ICE ufrag (the
// session's, or the first m-line's), which trickle PATCHes must match.
func parseOffer(offer string) (*sdp.SessionDescription, string, error) {
	if len(offer) == 0 {
		return nil, "", fmt.Errorf("%w: empty", ErrBadOffer)
	}
	if len(offer) > maxOfferSize {
		return nil, "", fmt.Errorf("%w: larger than %d bytes", ErrBadOffer, maxOfferSize)
	}
	sd := &sdp.SessionDescription{}
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	ufrag, _ := sd.Attribute("ice-ufrag")
	for _, md := range sd.MediaDescriptions {
		if ufrag != "" {
			break
		}
		if md != nil {
			ufrag, _ = md.Attribute("ice-ufrag")
		}
	}
	return sd, ufrag, nil
}

// accepted reports whether an m-line is in use: a port other than 0, or
// bundle-only (RFC 9143).
func accepted(md *sdp.MediaDescription) bool {
	return md.MediaName.Port.Value != 0 || hasAttr(md, "bundle-only")
}

func hasAttr(md *sdp.MediaDescription, key string) bool {
	_, ok := md.Attribute(key)
	return ok
}
