package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ICEServer is one entry of webrtc.ice_servers: a STUN or TURN server that
// WHIP and WHEP clients are told about (Link rel="ice-server", RFC 9725
// §4.6).
type ICEServer struct {
	// URLs are stun:host[:port], turn:host[:port][?transport=udp|tcp] or
	// turns:host[:port][?transport=tcp] URIs. At least one.
	URLs []string `yaml:"urls"`
	// Username and Credential are static TURN credentials. Required for
	// turn:/turns: URLs unless Secret is set.
	Username   string `yaml:"username"`
	Credential string `yaml:"credential"`
	// Secret, when set, makes time-limited TURN credentials from a shared
	// secret (the TURN REST API; coturn --use-auth-secret
	// --static-auth-secret=SECRET): username "expiry:stream", credential
	// base64(HMAC-SHA1(secret, username)). Default "".
	Secret string `yaml:"secret"`
	// TTL is how long time-limited credentials stay valid (with Secret).
	// Default 24h.
	TTL time.Duration `yaml:"ttl"`
}

// Values of webrtc.ice_transport.
const (
	ICETransportAll   = "all"
	ICETransportRelay = "relay"
)

func (c *Config) validateICEServers(bad func(key, format string, a ...any)) {
	anyTURN := false
	defer func() {
		switch c.WebRTC.ICETransport {
		case ICETransportAll:
		case ICETransportRelay:
			if !anyTURN {
				bad("webrtc.ice_transport", "relay needs a turn: or turns: server in webrtc.ice_servers")
			}
		default:
			bad("webrtc.ice_transport", "%q is not one of all, relay", c.WebRTC.ICETransport)
		}
	}()
	for i, s := range c.WebRTC.ICEServers {
		key := fmt.Sprintf("webrtc.ice_servers[%d]", i)
		if len(s.URLs) == 0 {
			bad(key+".urls", "at least one stun:, turn: or turns: URL is required")
		}
		turn := false
		for j, u := range s.URLs {
			isTURN, err := checkICEURL(u)
			if err != nil {
				bad(fmt.Sprintf("%s.urls[%d]", key, j), "%v", err)
			}
			turn = turn || isTURN
		}
		anyTURN = anyTURN || turn
		switch {
		case s.Secret != "" && (s.Username != "" || s.Credential != ""):
			bad(key, "set either secret or username and credential, not both")
		case s.Secret != "" && !turn:
			bad(key+".secret", "applies to turn: and turns: URLs only")
		case s.Secret == "" && turn && (s.Username == "" || s.Credential == ""):
			bad(key, "turn: and turns: URLs need username and credential, or secret")
		}
		if s.TTL < 0 || s.TTL > 30*24*time.Hour {
			bad(key+".ttl", "%s is out of range 0-720h", s.TTL)
		}
		if s.TTL != 0 && s.Secret == "" {
			bad(key+".ttl", "applies with secret only")
		}
		if strings.ContainsAny(s.Username+s.Credential, "\r\n") {
			bad(key, "username and credential must not contain line breaks") // secrets: not echoed
		}
	}
}

// checkICEURL checks a STUN/TURN URI (RFC 7064, RFC 7065) and reports
// whether it names a TURN server. Errors never repeat credentials: a URI
// has none.
func checkICEURL(raw string) (turn bool, err error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return false, fmt.Errorf("%q is not a stun:, turn: or turns: URL", raw)
	}
	switch scheme {
	case "stun", "stuns":
	case "turn", "turns":
		turn = true
	default:
		return false, fmt.Errorf("scheme %q is not stun, stuns, turn or turns", scheme)
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if strings.HasPrefix(hostport, "//") || strings.ContainsAny(hostport, "/@") {
		return turn, fmt.Errorf("%q: write %s:host[:port], without // or a path", raw, scheme)
	}
	host := hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return turn, fmt.Errorf("%q: port %q is not 1-65535", raw, p)
		}
		host = h
	} else if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return turn, fmt.Errorf("%q: write an IPv6 address in brackets, %s:[2001:db8::1]:3478", raw, scheme)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return turn, fmt.Errorf("%q has no host", raw)
	}
	if hasQuery {
		if !turn {
			return turn, fmt.Errorf("%q: a %s: URL takes no query", raw, scheme)
		}
		switch query {
		case "transport=udp", "transport=tcp":
		default:
			return turn, fmt.Errorf("%q: the query may only be transport=udp or transport=tcp", raw)
		}
	}
	return turn, nil
}
