package ingest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
)

// limitAdmission refuses past max publishers and records what it was asked.
type limitAdmission struct {
	max   int
	mu    sync.Mutex
	asked []int
}

func (a *limitAdmission) Admit(n int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, n)
	if n > a.max {
		return &RefusedError{Reason: "max_publishers", Detail: "limits.max_publishers (1) reached", RetryAfter: 1500 * time.Millisecond}
	}
	return nil
}

func (a *limitAdmission) calls() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.asked...)
}

// TestAdmission checks the count the admission check is asked with, the
// 503 of a refusal, and that a publish replacing its own name (a takeover
// or a reconnect to a held stream) is never asked about.
func TestAdmission(t *testing.T) {
	checkNoLeaks(t)
	adm := &limitAdmission{max: 1}
	reg := media.NewRegistryWith(media.RegistrySettings{ReconnectWindow: time.Minute})
	srv, err := NewServer(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, Logger: quietLogger(), Admission: adm}, reg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(newMux(srv, nil))
	t.Cleanup(func() {
		hs.Close()
		_ = srv.Close()
		reg.Close()
	})
	offer := crlf(testOffer)
	post := func(stream string) (*http.Response, string) {
		return do(t, "POST", hs.URL+"/whip/"+stream, "application/sdp", offer)
	}

	if resp, body := post("a"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first publish: %d %q", resp.StatusCode, body)
	}
	resp, body := post("b")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" ||
		strings.TrimSpace(body) != "overloaded: limits.max_publishers (1) reached" {
		t.Fatalf("past the limit: %d Retry-After %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if _, ok := reg.Get("b"); ok || srv.Publishers() != 1 {
		t.Fatalf("a refused publish left something behind: %d publishers", srv.Publishers())
	}
	// A publish of a live name adds no publisher: it is not asked about,
	// and gets the registry's own answer (409; after 3 s without media it
	// would take the session over, resume.go).
	if resp, body := post("a"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("same name at the limit: %d %q", resp.StatusCode, body)
	}
	if got := adm.calls(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("admission asked %v, want [1 2]", got)
	}

	// A held stream keeps its place: another name is refused, the
	// publisher coming back is admitted.
	srv.CloseStream("a") // ends "a" at once; hold a stream of our own instead
	if srv.Publishers() != 0 {
		t.Fatalf("after close: %d publishers", srv.Publishers())
	}
	tracks := []*media.Track{{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000},
		{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}}
	st, err := reg.Publish("h", tracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.Hold(st, "dropped")
	if srv.Publishers() != 1 {
		t.Fatalf("held stream: %d publishers, want 1", srv.Publishers())
	}
	if resp, _ := post("c"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("new name while the held stream has the place: %d", resp.StatusCode)
	}
	if resp, body := post("h"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("reconnect to the held stream: %d %q", resp.StatusCode, body)
	}
	if s, _, _ := st.State(); s != media.StateLive {
		t.Fatalf("held stream not resumed: %v", s)
	}
	if got := adm.calls(); len(got) != 3 || got[2] != 2 {
		t.Fatalf("admission asked %v, want [1 2 2]", got)
	}
}

func TestRefusedError(t *testing.T) {
	err := error(&RefusedError{Reason: "cpu", Detail: "cpu 93% >= limits.max_cpu 90%"})
	if !errors.Is(err, ErrOverloaded) || ErrorStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("%v: status %d", err, ErrorStatus(err))
	}
}
