package rtmp

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Target is an RTMP(S) destination split the way OBS splits it: the app is
// the first path element and the stream key is everything after it,
// including any query string (Twitch and others put tokens there).
type Target struct {
	// Scheme is "rtmp" or "rtmps".
	Scheme string
	// Host is host:port, with the default port (1935, or 443 for rtmps) filled in.
	Host string
	// App is the application name sent in connect.
	App string
	// Key is the stream key sent in publish. Never log it: use Redacted.
	Key string
}

// ParseURL parses rtmp://host[:port]/app/key and rtmps://host[:port]/app/key.
func ParseURL(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("%w: %s", ErrBadURL, redactRaw(raw))
	}
	t := Target{Scheme: strings.ToLower(u.Scheme)}
	port := ""
	switch t.Scheme {
	case "rtmp":
		port = "1935"
	case "rtmps":
		port = "443"
	default:
		return Target{}, fmt.Errorf("%w: scheme %q is not rtmp or rtmps", ErrBadURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return Target{}, fmt.Errorf("%w: no host in %s", ErrBadURL, redactRaw(raw))
	}
	if u.Port() != "" {
		port = u.Port()
	}
	t.Host = net.JoinHostPort(u.Hostname(), port)
	// Split the raw path: a key may hold escaped characters that must reach
	// the server as the user typed them.
	p := strings.TrimPrefix(u.EscapedPath(), "/")
	app, key, _ := strings.Cut(p, "/")
	if u.RawQuery != "" {
		key += "?" + u.RawQuery
	}
	if app == "" || key == "" {
		return Target{}, fmt.Errorf("%w: %s is not %s://host/app/key", ErrBadURL, redactRaw(raw), t.Scheme)
	}
	t.App, t.Key = app, key
	return t, nil
}

// TCURL is the tcUrl of the connect command: the URL without the key.
func (t Target) TCURL() string { return t.Scheme + "://" + t.Host + "/" + t.App }

// Redacted is the URL with the key replaced by ****, for logs and the API.
func (t Target) Redacted() string { return t.TCURL() + "/****" }

// redactRaw hides what may be a key in a URL that did not parse.
func redactRaw(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "****"
	}
	host, p, _ := strings.Cut(rest, "/")
	app, _, hasKey := strings.Cut(p, "/")
	s := scheme + "://" + host
	if app != "" {
		s += "/" + app
	}
	if hasKey {
		s += "/****"
	}
	return s
}
