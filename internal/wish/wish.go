// Package wish is the HTTP side of the test clients' WHIP (RFC 9725) and
// WHEP sessions, named after the IETF working group of both: the offer
// POSTed for a session resource, its PATCHes, its DELETE, and the pion
// settings both clients share. The media sides stay in whipclient and
// whepclient.
package wish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// ErrStatus is wrapped by a POST that the server answers with anything but
// 201; StatusError carries the code.
var ErrStatus = errors.New("unexpected HTTP status")

// StatusError is the server's refusal of a POST.
type StatusError struct {
	Client string // whose request: "whipclient", "whepclient"
	Code   int
	Body   string
	// RetryAfter is the answer's Retry-After in seconds (RFC 9110
	// 10.2.3), 0 when it had none or an HTTP date.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: POST: %d %s: %s", e.Client, e.Code, http.StatusText(e.Code), e.Body)
}

// Unwrap makes errors.Is(err, ErrStatus) true.
func (e *StatusError) Unwrap() error { return ErrStatus }

// Resource is one session resource: where the POST's answer said it is, and
// its ETag (RFC 9725 section 4.3.1).
type Resource struct {
	HTTP   *http.Client // nil: http.DefaultClient
	Token  string       // sent as a Bearer token when not empty
	Client string       // names the client in errors

	Location string
	ETag     string
}

func (r *Resource) do(req *http.Request) (*http.Response, error) {
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	c := r.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	return c.Do(req)
}

// Post sends offer (application/sdp) to endpoint and returns the answer;
// Location and ETag are the new resource's.
func (r *Resource) Post(ctx context.Context, endpoint, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := r.do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		se := &StatusError{Client: r.Client, Code: resp.StatusCode, Body: string(bytes.TrimSpace(body))}
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
			se.RetryAfter = time.Duration(n) * time.Second
		}
		return "", se
	}
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("%s: POST: no Location: %w", r.Client, err)
	}
	r.Location, r.ETag = loc.String(), resp.Header.Get("ETag")
	return string(body), nil
}

// Patch sends body (of contentType) to the resource with If-Match ifMatch,
// and returns the response, its body read (and the response closed).
func (r *Resource) Patch(ctx context.Context, contentType, ifMatch, body string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, r.Location, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", contentType)
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := r.do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp, string(b), err
}

// Delete ends the resource and returns the status the server answered; a
// resource never created is no request at all (0, nil).
func (r *Resource) Delete(ctx context.Context) (int, error) {
	if r.Location == "" {
		return 0, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, r.Location, nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// LoopbackOnly keeps pion's ICE agent on the loopback interface, IPv4 UDP:
// the tests' clients and gateway share the machine.
func LoopbackOnly(se *webrtc.SettingEngine) {
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
}

// Negotiate runs the offer/answer of a session on pc: its offer with every
// candidate gathered (no trickle), POSTed to endpoint (or handed to signal
// when not nil: a test's own signalling), the answer applied, and then a
// wait until connected is closed. Once the resource exists, a failure
// calls undo (the client's DELETE) before it returns.
func (r *Resource) Negotiate(ctx context.Context, pc *webrtc.PeerConnection, endpoint string, connected <-chan struct{},
	signal func(ctx context.Context, offer string) (string, error), undo func()) error {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	var answer string
	if signal != nil {
		answer, err = signal(ctx, pc.LocalDescription().SDP)
	} else {
		answer, err = r.Post(ctx, endpoint, pc.LocalDescription().SDP)
	}
	if err != nil {
		return err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		undo()
		return err
	}
	select {
	case <-connected:
		return nil
	case <-ctx.Done():
		undo()
		return fmt.Errorf("%s: waiting for connection: %w", r.Client, ctx.Err())
	}
}
