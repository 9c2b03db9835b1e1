package ingest

import (
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// maxTrickleSize bounds a trickle-ice-sdpfrag body.
const maxTrickleSize = 16 << 10

// trickleCandidate is one a=candidate line of a fragment with the media
// section it belongs to.
type trickleCandidate struct {
	mid       string // "" when the fragment had no a=mid
	candidate string // "candidate:..." without the "a="
}

// trickleFragment is a parsed application/trickle-ice-sdpfrag body (RFC 8840
// §9, as used by WHIP, RFC 9725 §4.3.1).
type trickleFragment struct {
	iceUfrag, icePwd string
	candidates       []trickleCandidate
	endOfCandidates  bool
}

// parseTrickle parses an SDP fragment. It is strict about what it uses
// (candidate syntax is left to ICE) and ignores other attributes.
func parseTrickle(frag string) (trickleFragment, error) {
	var f trickleFragment
	if len(frag) > maxTrickleSize {
		return f, fmt.Errorf("%w: larger than %d bytes", ErrBadTrickle, maxTrickleSize)
	}
	mid := ""
	for line := range strings.Lines(frag) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return f, fmt.Errorf("%w: not an SDP line: %.40q", ErrBadTrickle, line)
		}
		switch line[0] {
		case 'm':
			mid = ""
			continue
		case 'a':
		default:
			continue
		}
		attr := line[2:]
		key, val, _ := strings.Cut(attr, ":")
		switch key {
		case "ice-ufrag":
			if val == "" {
				return f, fmt.Errorf("%w: empty ice-ufrag", ErrBadTrickle)
			}
			f.iceUfrag = val
		case "ice-pwd":
			f.icePwd = val
		case "mid":
			mid = val
		case "candidate":
			fields := strings.Fields(val)
			if len(fields) < 8 {
				return f, fmt.Errorf("%w: short candidate line", ErrBadTrickle)
			}
			// Eyevinn's whip-web-client (1.1.x) writes its candidates
			// itself, in two ways ICE would refuse: component 0 for
			// RTP (IDs start at 1, RFC 8445 §5.1.1.1; with rtcp-mux
			// there is no other component it can mean), and IPv6
			// addresses in brackets (RFC 8839's connection-address
			// has none). Both are read as meant.
			fixed := false
			if fields[1] == "0" {
				fields[1] = "1"
				fixed = true
			}
			if a := fields[4]; len(a) > 2 && a[0] == '[' && a[len(a)-1] == ']' {
				fields[4] = a[1 : len(a)-1]
				fixed = true
			}
			if fixed {
				attr = "candidate:" + strings.Join(fields, " ")
			}
			f.candidates = append(f.candidates, trickleCandidate{mid: mid, candidate: attr})
		case "end-of-candidates":
			f.endOfCandidates = true
		}
	}
	return f, nil
}

// addFragment adds the candidates of a parsed RFC 8840 fragment to pc (a
// WHIP or WHEP trickle PATCH). ufrag is the client's ice-ufrag of the
// current ICE session; the caller has checked the fragment's against it.
func addFragment(pc *webrtc.PeerConnection, ufrag string, f trickleFragment) error {
	for _, c := range f.candidates {
		init := webrtc.ICECandidateInit{Candidate: c.candidate}
		if c.mid != "" {
			mid := c.mid
			init.SDPMid = &mid
		} else {
			var zero uint16
			init.SDPMLineIndex = &zero
		}
		if err := addCandidate(pc, ufrag, init); err != nil {
			return err
		}
	}
	return nil
}

// addCandidate adds one remote candidate as a browser's onicecandidate
// gives it (RTCIceCandidateInit: the room socket), or one line of a
// trickle fragment. An empty candidate is the end of candidates. A
// usernameFragment other than the current ICE session's (ufrag) is refused
// with ErrICERestart: the room socket has no ICE restart.
func addCandidate(pc *webrtc.PeerConnection, ufrag string, c webrtc.ICECandidateInit) error {
	if c.UsernameFragment != nil && *c.UsernameFragment != "" && ufrag != "" && *c.UsernameFragment != ufrag {
		return ErrICERestart
	}
	if len(c.Candidate) > maxTrickleSize {
		return fmt.Errorf("%w: candidate larger than %d bytes", ErrBadTrickle, maxTrickleSize)
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadTrickle, err)
	}
	return nil
}
