package web

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/whipcast/whipcast/rooms"
)

func TestParseSignal(t *testing.T) {
	big := `{"type":"publish","sdp":"` + strings.Repeat("a", maxSignalSDP+1) + `"}`
	for _, c := range []struct {
		name, in string
		ok       bool
		ref      string
	}{
		{"publish", `{"type":"publish","ref":"p1","sdp":"v=0"}`, true, "p1"},
		{"publish without sdp", `{"type":"publish","ref":"p1"}`, false, "p1"},
		{"publish too big", big, false, ""},
		{"unpublish", `{"type":"unpublish"}`, true, ""},
		{"subscribe", `{"type":"subscribe","participant":"bob","sdp":"v=0"}`, true, ""},
		{"subscribe bad name", `{"type":"subscribe","participant":"a/b","sdp":"v=0"}`, false, ""},
		{"subscribe nobody", `{"type":"subscribe","sdp":"v=0"}`, false, ""},
		{"unsubscribe", `{"type":"unsubscribe","id":"x"}`, true, ""},
		{"unsubscribe without id", `{"type":"unsubscribe"}`, false, ""},
		{"candidate", `{"type":"candidate","id":"x","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}`, true, ""},
		{"end of candidates", `{"type":"candidate","id":"x","candidate":{"candidate":""}}`, true, ""},
		{"end of candidates as a browser sends it", `{"type":"candidate","id":"x","candidate":""}`, true, ""},
		{"candidate as a string", `{"type":"candidate","id":"x","candidate":"candidate:1"}`, false, ""},
		{"candidate without one", `{"type":"candidate","id":"x"}`, false, ""},
		{"mute", `{"type":"mute","kind":"audio","muted":true}`, true, ""},
		{"unmute", `{"type":"mute","kind":"video","muted":false}`, true, ""},
		{"mute screen", `{"type":"mute","kind":"screen","muted":true}`, false, ""},
		{"mute without muted", `{"type":"mute","kind":"audio"}`, false, ""},
		{"unknown type", `{"type":"dance","ref":"d"}`, false, "d"},
		{"no type", `{"sdp":"v=0"}`, false, ""},
		{"not JSON", `hello`, false, ""},
		{"array", `[1,2]`, false, ""},
		{"null", `null`, false, ""},
		{"extra fields", `{"type":"unpublish","x":1}`, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := parseSignal([]byte(c.in))
			if (err == nil) != c.ok {
				t.Fatalf("parseSignal: %+v %v", m, err)
			}
			if err != nil && (err.Type != "error" || err.Code != 400 || err.Ref != c.ref || err.Message == "") {
				t.Fatalf("error message %+v", err)
			}
		})
	}
}

func TestRoomEventMessage(t *testing.T) {
	b, _ := json.Marshal(roomEventMessage(rooms.Event{Type: rooms.Unmuted, Room: "r", Participant: "bob", Kind: "audio"}))
	if string(b) != `{"type":"muted","participant":"bob","kind":"audio","muted":false}` {
		t.Fatalf("unmute: %s", b)
	}
	b, _ = json.Marshal(roomSnapshot(rooms.Info{Name: "r", Participants: []string{}}, "alice"))
	if string(b) != `{"type":"room","room":"r","you":"alice","participants":[]}` {
		t.Fatalf("empty snapshot: %s", b)
	}
}

// FuzzParseSignal: room socket messages come from the network. The parser
// never panics, refuses with a 400 error message, and what it accepts is a
// known type with its required fields, which survives a round trip.
func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{
		`{"type":"publish","sdp":"v=0\r\n"}`,
		`{"type":"subscribe","participant":"bob","sdp":"v=0"}`,
		`{"type":"candidate","id":"x","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMLineIndex":0}}`,
		`{"type":"mute","kind":"audio","muted":true}`,
		`{"type":"unsubscribe","id":"x","ref":"r"}`,
		`{"type":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSignal(b)
		if err != nil {
			if err.Type != "error" || err.Code != 400 || err.Message == "" {
				t.Fatalf("bad refusal %+v", err)
			}
			return
		}
		switch m.Type {
		case msgPublish, msgSubscribe:
			if m.SDP == "" || len(m.SDP) > maxSignalSDP || (m.Type == msgSubscribe && rooms.ValidName(m.Participant) != nil) {
				t.Fatalf("accepted %+v", m)
			}
		case msgUnsubscribe:
			if m.ID == "" {
				t.Fatalf("accepted %+v", m)
			}
		case msgCandidate:
			if m.ID == "" || m.Candidate == nil {
				t.Fatalf("accepted %+v", m)
			}
		case msgMute:
			if (m.Kind != "audio" && m.Kind != "video") || m.Muted == nil {
				t.Fatalf("accepted %+v", m)
			}
		case msgUnpublish:
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
		again, _ := json.Marshal(m)
		m2, err := parseSignal(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %+v → %s → %+v %v", m, again, m2, err)
		}
	})
}
