package whipclient

// ICE restart over WHIP PATCH (RFC 9725 section 4.4.1).

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"
)

// ETag is the entity-tag of the current ICE session: the 201's, then that of
// the last RestartICE.
func (c *Client) ETag() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.res.ETag
}

// RestartICE restarts ICE on the running publish as RFC 9725 §4.3.2 says:
// a new local ice-ufrag/ice-pwd (pion's ICERestart offer), sent with all the
// new candidates in a PATCH with If-Match: *; the 200's fragment gives the
// server's new credentials and candidates, applied to the answer in place of
// the old ones (nothing else is renegotiated). Media keeps flowing on the
// same tracks once ICE has reconnected. It returns the new ETag.
func (c *Client) RestartICE(ctx context.Context) (string, error) {
	offer, err := c.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	// The fragment: the first m-section's (the bundle's transport) mid,
	// credentials and candidates.
	var frag strings.Builder
	section := 0
	for _, l := range strings.Split(c.pc.LocalDescription().SDP, "\r\n") {
		if strings.HasPrefix(l, "m=") {
			section++
		}
		if section != 1 {
			continue
		}
		for _, p := range []string{"m=", "a=mid:", "a=ice-ufrag:", "a=ice-pwd:", "a=candidate:", "a=end-of-candidates"} {
			if strings.HasPrefix(l, p) {
				frag.WriteString(l + "\r\n")
			}
		}
	}
	resp, body, err := c.res.Patch(ctx, "application/trickle-ice-sdpfrag", "*", frag.String())
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("whipclient: ICE restart: %s: %s", resp.Status, strings.TrimSpace(body))
	}
	var ufrag, pwd string
	var cands []string
	for _, l := range strings.Split(string(body), "\r\n") {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			ufrag = l
		case strings.HasPrefix(l, "a=ice-pwd:"):
			pwd = l
		case strings.HasPrefix(l, "a=candidate:"):
			cands = append(cands, l)
		}
	}
	if ufrag == "" || pwd == "" {
		return "", fmt.Errorf("whipclient: ICE restart: no credentials in the answer: %q", body)
	}
	// The answer as before with the new ICE session's lines: credentials
	// replaced, the old candidates out, the new ones at the end of the
	// first m-section.
	var answer strings.Builder
	section = 0
	endFirst := func() {
		for _, cl := range cands {
			answer.WriteString(cl + "\r\n")
		}
		answer.WriteString("a=end-of-candidates\r\n")
	}
	for _, l := range strings.Split(c.pc.RemoteDescription().SDP, "\r\n") {
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "m="):
			section++
			if section == 2 {
				endFirst()
			}
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			l = ufrag
		case strings.HasPrefix(l, "a=ice-pwd:"):
			l = pwd
		case strings.HasPrefix(l, "a=candidate:"), l == "a=end-of-candidates":
			continue
		}
		answer.WriteString(l + "\r\n")
	}
	if section == 1 {
		endFirst()
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.String()}); err != nil {
		return "", fmt.Errorf("whipclient: ICE restart: %w", err)
	}
	c.mu.Lock()
	c.res.ETag = resp.Header.Get("ETag")
	c.mu.Unlock()
	return resp.Header.Get("ETag"), nil
}
