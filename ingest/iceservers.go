package ingest

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API (coturn use-auth-secret) is HMAC-SHA1
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// ICEServer is a STUN or TURN server offered to WHIP and WHEP clients in
// Link rel="ice-server" headers (RFC 9725 §4.6) and, for TURN, used by the
// gateway's own ICE agent so it gathers relay candidates too.
type ICEServer struct {
	// URLs are stun:, turn: or turns: URIs (RFC 7064, RFC 7065), e.g.
	// "turn:turn.example.net:3478?transport=udp".
	URLs []string
	// Username and Credential are static TURN credentials. Ignored when
	// Secret is set.
	Username, Credential string
	// Secret, when set, makes time-limited TURN credentials (the TURN REST
	// API, coturn's use-auth-secret): username "expiry:stream", credential
	// base64(HMAC-SHA1(Secret, username)).
	Secret string
	// TTL is how long time-limited credentials stay valid. Default 24h.
	TTL time.Duration
}

const defaultTURNTTL = 24 * time.Hour

// TURNRESTCredentials returns the TURN REST API credentials for user that
// expire at expiry: username "<unix expiry>:<user>", password
// base64(HMAC-SHA1(secret, username)), which coturn started with
// --use-auth-secret --static-auth-secret=secret accepts until expiry.
func TURNRESTCredentials(secret, user string, expiry time.Time) (username, credential string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// credentials returns the username and credential for a session on
// stream, made now.
func (s ICEServer) credentials(stream string, now time.Time) (string, string) {
	if s.Secret == "" {
		return s.Username, s.Credential
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = defaultTURNTTL
	}
	return TURNRESTCredentials(s.Secret, stream, now.Add(ttl))
}

// isTURN reports whether a URI names a TURN server (turn: or turns:).
func isTURN(uri string) bool {
	scheme, _, _ := strings.Cut(strings.ToLower(uri), ":")
	return scheme == "turn" || scheme == "turns"
}

// quoteParam is an RFC 8288 quoted-string (RFC 9110 §5.6.4).
func quoteParam(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	return `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
}

// iceLinks returns one Link header value per URL of servers for a session
// on stream (RFC 9725 §4.6): TURN URLs carry username, credential and
// credential-type="password"; STUN URLs none.
func iceLinks(servers []ICEServer, stream string, now time.Time) []string {
	var links []string
	for _, srv := range servers {
		user, cred := srv.credentials(stream, now)
		for _, u := range srv.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if isTURN(u) {
				l += "; username=" + quoteParam(user) + "; credential=" + quoteParam(cred) + `; credential-type="password"`
			}
			links = append(links, l)
		}
	}
	return links
}

// pionICEServers is the gateway's own ICE configuration for a session on
// stream: the TURN URLs only. STUN would make pion gather server-reflexive
// candidates from ephemeral sockets, off the one media port; the gateway's
// public address is webrtc.public_ips' job.
func pionICEServers(servers []ICEServer, stream string, now time.Time) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, srv := range servers {
		var urls []string
		for _, u := range srv.URLs {
			if isTURN(u) {
				urls = append(urls, u)
			}
		}
		if len(urls) == 0 {
			continue
		}
		user, cred := srv.credentials(stream, now)
		out = append(out, webrtc.ICEServer{URLs: urls, Username: user, Credential: cred, CredentialType: webrtc.ICECredentialTypePassword})
	}
	return out
}

// relayGatherWait bounds how long an answer waits for relay candidates: a
// TURN server that does not answer must not fail every publish. The answer
// then carries the candidates gathered so far.
const relayGatherWait = 3 * time.Second

// peerConfig is the gateway's own ICE configuration for a PeerConnection on
// stream: its TURN servers, and only relay candidates when RelayOnly.
func (s *Server) peerConfig(stream string) webrtc.Configuration {
	c := webrtc.Configuration{ICEServers: pionICEServers(s.iceServers, stream, time.Now())}
	if s.relayOnly {
		c.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return c
}

// waitGathered waits until ICE gathering is complete. With relay servers it
// waits at most relayGatherWait: the answer then carries what was gathered
// (host candidates first; a late relay candidate is not sent, as the
// gateway does not trickle). A relay-only agent has nothing but relay
// candidates to answer with, so it waits for the whole gathering (bounded
// by ctx).
func waitGathered(ctx context.Context, gathered <-chan struct{}, pc webrtc.Configuration) error {
	var late <-chan time.Time
	if len(pc.ICEServers) > 0 && pc.ICETransportPolicy != webrtc.ICETransportPolicyRelay {
		t := time.NewTimer(relayGatherWait)
		defer t.Stop()
		late = t.C
	}
	select {
	case <-gathered:
	case <-late:
	case <-ctx.Done():
		return fmt.Errorf("ingest: ICE gathering: %w", ctx.Err())
	}
	return nil
}

// publicIPRules make ips the only host candidate addresses: one rule maps
// every local address of each family present in ips to them, and a rule per
// missing family drops that family's addresses. pion's NAT 1:1 setting alone
// maps only the families it has addresses for and advertises the others as
// they are (an fd00::2 next to --public-ip 127.0.0.1).
func publicIPRules(ips []string) []webrtc.ICEAddressRewriteRule {
	rules := []webrtc.ICEAddressRewriteRule{{External: ips, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace}}
	var has4, has6 bool
	for _, s := range ips {
		if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
			has4 = true
		} else {
			has6 = true
		}
	}
	// A rule whose External has no address of its Networks' family maps
	// that family to nothing: with Replace, its candidates are dropped.
	if !has6 {
		rules = append(rules, webrtc.ICEAddressRewriteRule{External: ips, AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode: webrtc.ICEAddressRewriteReplace, Networks: []webrtc.NetworkType{webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP6}})
	}
	if !has4 {
		rules = append(rules, webrtc.ICEAddressRewriteRule{External: ips, AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode: webrtc.ICEAddressRewriteReplace, Networks: []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4}})
	}
	return rules
}
