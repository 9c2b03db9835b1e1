package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/media"
)

// TestAddCandidate: one RTCIceCandidateInit at a time (the room socket's
// trickle) reaches the same checks as a WHIP PATCH.
func TestAddCandidate(t *testing.T) {
	checkNoLeaks(t)
	env := newTestEnv(t, Config{}, nil)
	sess, _, err := env.srv.Publish(context.Background(), "live/cand", crlf(testOffer))
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	zero := uint16(0)
	for _, c := range []struct {
		name string
		in   webrtc.ICECandidateInit
		want error
	}{
		{"host", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", SDPMid: str("0")}, nil},
		{"by index", webrtc.ICECandidateInit{Candidate: "candidate:2 1 udp 2130706431 127.0.0.1 50002 typ host", SDPMLineIndex: &zero}, nil},
		{"same ufrag", webrtc.ICECandidateInit{Candidate: "candidate:3 1 udp 2130706431 127.0.0.1 50004 typ host", SDPMid: str("0"), UsernameFragment: str("abcd")}, nil},
		{"end of candidates", webrtc.ICECandidateInit{}, nil},
		{"garbage", webrtc.ICECandidateInit{Candidate: "candidate:x"}, ErrBadTrickle},
		{"restart", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 1 typ host", UsernameFragment: str("new")}, ErrICERestart},
	} {
		if err := sess.AddCandidate(c.in); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	sess.Close()
	if err := sess.AddCandidate(webrtc.ICECandidateInit{}); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("after Close: %v", err)
	}
	env.waitEmpty(t)
}

func TestErrorStatus(t *testing.T) {
	for err, want := range map[error]int{
		media.ErrBadName:                        400,
		fmt.Errorf("x: %w", ErrBadOffer):        400,
		ErrBadTrickle:                           400,
		ErrNoAudioCodec:                         400,
		media.ErrStreamNotFound:                 404,
		ErrSessionNotFound:                      404,
		media.ErrStreamBusy:                     409,
		ErrICERestart:                           422,
		ErrServerClosed:                         503,
		errors.New("ingest: connection failed"): http.StatusInternalServerError,
	} {
		if got := ErrorStatus(err); got != want {
			t.Errorf("ErrorStatus(%v) = %d, want %d", err, got, want)
		}
	}
}
