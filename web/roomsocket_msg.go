package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/rooms"
)

// maxSignalSDP bounds an SDP offer on the room socket, as WHIP bounds its
// body (64 KiB).
const maxSignalSDP = 64 << 10

// maxSignalMessage is the room socket's read limit: an SDP offer JSON-escaped
// fits with room to spare. A bigger message closes the socket (1009).
const maxSignalMessage = 256 << 10

// Client → server message types of the room socket (docs/api.md).
const (
	msgPublish     = "publish"
	msgUnpublish   = "unpublish"
	msgSubscribe   = "subscribe"
	msgUnsubscribe = "unsubscribe"
	msgCandidate   = "candidate"
	msgMute        = "mute"
)

// signalRequest is one client message of the room socket.
type signalRequest struct {
	// Type is publish, unpublish, subscribe, unsubscribe, candidate or mute.
	Type string `json:"type"`
	// Ref is the client's own tag, echoed in the answer or error.
	Ref string `json:"ref,omitempty"`
	// SDP is the offer of publish and subscribe.
	SDP string `json:"sdp,omitempty"`
	// ID names a session of this socket: candidate, unsubscribe.
	ID string `json:"id,omitempty"`
	// Participant is whom subscribe watches.
	Participant string `json:"participant,omitempty"`
	// Candidate is a browser's RTCIceCandidateInit (candidate, sdpMid,
	// sdpMLineIndex, usernameFragment); an empty candidate, or "" (what a
	// browser's last onicecandidate gives), ends them.
	Candidate *iceCandidate `json:"candidate,omitempty"`
	// Kind ("audio", "video") and Muted are mute's.
	Kind  string `json:"kind,omitempty"`
	Muted *bool  `json:"muted,omitempty"`
}

// iceCandidate is the candidate field: an RTCIceCandidateInit object, or
// the string "" that ends the candidates.
type iceCandidate struct{ webrtc.ICECandidateInit }

// UnmarshalJSON implements json.Unmarshaler.
func (c *iceCandidate) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == `""` {
		c.ICECandidateInit = webrtc.ICECandidateInit{}
		return nil
	}
	return json.Unmarshal(b, &c.ICECandidateInit)
}

// signalError is an error message of the room socket: Code is the HTTP
// status the same refusal has on WHIP, WHEP or the REST API.
type signalError struct {
	Type    string `json:"type"` // "error"
	Ref     string `json:"ref,omitempty"`
	ID      string `json:"id,omitempty"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *signalError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

func badSignal(ref, format string, a ...any) *signalError {
	return &signalError{Type: "error", Ref: ref, Code: http.StatusBadRequest, Message: fmt.Sprintf(format, a...)}
}

// parseSignal decodes and checks one client message; the error is the
// 400 error message to send back (the socket stays open).
func parseSignal(b []byte) (signalRequest, *signalError) {
	var m signalRequest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, badSignal("", "not a JSON message object: %v", err)
	}
	switch m.Type {
	case msgPublish, msgSubscribe:
		if m.SDP == "" {
			return m, badSignal(m.Ref, "%s needs sdp (an SDP offer)", m.Type)
		}
		if len(m.SDP) > maxSignalSDP {
			return m, badSignal(m.Ref, "sdp larger than %d bytes", maxSignalSDP)
		}
		if m.Type == msgSubscribe {
			if err := rooms.ValidName(m.Participant); err != nil {
				return m, badSignal(m.Ref, "subscribe needs participant, one name segment [A-Za-z0-9_-]{1,64}")
			}
		}
	case msgUnsubscribe:
		if m.ID == "" {
			return m, badSignal(m.Ref, "unsubscribe needs id")
		}
	case msgCandidate:
		if m.ID == "" || m.Candidate == nil {
			return m, badSignal(m.Ref, "candidate needs id and candidate")
		}
	case msgMute:
		if m.Kind != "audio" && m.Kind != "video" {
			return m, badSignal(m.Ref, `mute needs kind "audio" or "video"`)
		}
		if m.Muted == nil {
			return m, badSignal(m.Ref, "mute needs muted (true or false)")
		}
	case msgUnpublish:
	case "":
		return m, badSignal(m.Ref, "message has no type")
	default:
		return m, badSignal(m.Ref, "unknown message type %.40q", m.Type)
	}
	return m, nil
}

// Server → client messages.

// signalAnswer answers publish and subscribe.
type signalAnswer struct {
	Type        string `json:"type"` // "answer"
	Ref         string `json:"ref,omitempty"`
	ID          string `json:"id"`
	Participant string `json:"participant,omitempty"` // subscribe: whom
	SDP         string `json:"sdp"`
}

// signalRoom is the snapshot sent on connect.
type signalRoom struct {
	Type         string              `json:"type"` // "room"
	Room         string              `json:"room"`
	You          string              `json:"you"`
	Participants []signalParticipant `json:"participants"`
}

type signalParticipant struct {
	Name  string   `json:"name"`
	Muted []string `json:"muted,omitempty"`
}

// signalEvent is joined, left, muted and ended (the room's), and closed
// (one of this socket's sessions).
type signalEvent struct {
	Type        string `json:"type"`
	Ref         string `json:"ref,omitempty"`
	ID          string `json:"id,omitempty"`
	Participant string `json:"participant,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Muted       *bool  `json:"muted,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// roomEventMessage turns a room event into its socket message.
func roomEventMessage(e rooms.Event) signalEvent {
	m := signalEvent{Participant: e.Participant, Reason: e.Reason}
	switch e.Type {
	case rooms.Joined:
		m.Type = "joined"
	case rooms.Left:
		m.Type = "left"
	case rooms.Muted, rooms.Unmuted:
		muted := e.Type == rooms.Muted
		m.Type, m.Kind, m.Muted = "muted", e.Kind, &muted
	case rooms.Ended:
		m.Type = "ended"
	}
	return m
}
