package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/media"
)

// Permissions a token can grant on a stream.
const (
	PermPublish = "publish"
	PermPlay    = "play"
)

// Auth decides who may administer the gateway (/v1), publish (WHIP) and
// play (HLS, DASH). The zero value lets anyone publish and play, and lets
// only loopback clients use /v1.
type Auth struct {
	// Admin is the Bearer token of /v1. Empty: /v1 answers loopback clients
	// only (403 admin_token_required for others).
	Admin string
	// Publish is a static token that may publish any stream. Empty: none.
	Publish string
	// Play is a static token that may play any stream. Empty: none.
	Play string
	// JWTSecret verifies HS256 JSON Web Tokens (RFC 7519) whose "sub" is a
	// stream-name glob and whose "perm" is "publish", "play" or a list of
	// them; "exp" and "nbf" are honoured. Empty: JWTs are refused.
	JWTSecret string
	// Now is the clock for exp/nbf. Default time.Now.
	Now func() time.Time
}

// publishOpen and playOpen: no credential configured means open.
func (a *Auth) publishOpen() bool { return a.Publish == "" && a.JWTSecret == "" }
func (a *Auth) playOpen() bool    { return a.Play == "" && a.JWTSecret == "" }

// PublishAuth is the WHIP auth callback (ingest.NewWHIPHandler): nil when
// publishing is open.
func (a *Auth) PublishAuth() func(r *http.Request, stream string) error {
	if a.publishOpen() {
		return nil
	}
	return func(r *http.Request, stream string) error {
		return a.check(r, stream, PermPublish, a.Publish)
	}
}

// PlayAuth is the playback check of /hls/ and /dash/: nil when playback is
// open. The token comes from ?token= (players) or Authorization: Bearer.
func (a *Auth) PlayAuth() func(r *http.Request, stream string) error {
	if a.playOpen() {
		return nil
	}
	return func(r *http.Request, stream string) error {
		return a.check(r, stream, PermPlay, a.Play)
	}
}

// check accepts the static token or a JWT granting perm on stream; it
// returns ingest.ErrUnauthorized without a token and ingest.ErrForbidden
// with a wrong one.
func (a *Auth) check(r *http.Request, stream, perm, static string) error {
	tok, ok := requestToken(r)
	if !ok {
		return ingest.ErrUnauthorized
	}
	if static != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(static)) == 1 {
		return nil
	}
	if a.JWTSecret != "" && strings.Count(tok, ".") == 2 {
		if c, err := VerifyJWT(tok, []byte(a.JWTSecret), a.now()); err == nil && c.Grants(perm, stream) {
			return nil
		}
	}
	return ingest.ErrForbidden
}

// admin checks a /v1 request.
func (a *Auth) admin(r *http.Request) *apiError {
	if a.Admin == "" {
		// A page on another site must not use a visitor's loopback access
		// (browsers send Origin on cross-origin requests).
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				return &apiError{http.StatusForbidden, "admin_token_required", "cross-origin API use needs auth.admin_token"}
			}
		}
		if isLoopbackRemote(r.RemoteAddr) {
			return nil
		}
		return &apiError{http.StatusForbidden, "admin_token_required", "set auth.admin_token to use the API from another machine"}
	}
	tok, ok := requestToken(r)
	if !ok {
		return &apiError{http.StatusUnauthorized, "unauthorized", "Authorization: Bearer <auth.admin_token> is required"}
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(a.Admin)) != 1 {
		return &apiError{http.StatusForbidden, "forbidden", "wrong token"}
	}
	return nil
}

func (a *Auth) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// requestToken is the Bearer token, else the token query parameter (players
// and WebSockets cannot set headers).
func requestToken(r *http.Request) (string, bool) {
	if tok, ok := bearer(r); ok {
		return tok, true
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		return tok, true
	}
	return "", false
}

func isLoopbackRemote(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Errors of VerifyJWT.
var (
	ErrJWTMalformed = errors.New("jwt: malformed")
	ErrJWTAlg       = errors.New("jwt: alg is not HS256")
	ErrJWTSignature = errors.New("jwt: bad signature")
	ErrJWTExpired   = errors.New("jwt: expired")
	ErrJWTNotYet    = errors.New("jwt: not valid yet")
)

// Claims are the JWT claims whipcast reads.
type Claims struct {
	// Sub is a stream-name glob ("*" any run, "?" one character).
	Sub string `json:"sub"`
	// Perm is "publish", "play" or a list of them.
	Perm Perms `json:"perm"`
	// Exp and Nbf are NumericDates (seconds since the epoch); 0 is absent.
	Exp float64 `json:"exp"`
	Nbf float64 `json:"nbf"`
}

// Perms is the perm claim: one string or a list.
type Perms []string

// UnmarshalJSON accepts "play" as well as ["play", "publish"].
func (p *Perms) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*p = Perms{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*p = list
	return nil
}

// Grants reports whether the claims allow perm on stream.
func (c Claims) Grants(perm, stream string) bool {
	if c.Sub == "" || !media.MatchName(c.Sub, stream) {
		return false
	}
	for _, p := range c.Perm {
		if p == perm {
			return true
		}
	}
	return false
}

// VerifyJWT checks a compact JWS (RFC 7515) signed with HMAC-SHA256
// (RFC 7518 3.2) and its time claims (RFC 7519 4.1.4, 4.1.5), and returns
// its claims. Only HS256 is accepted, so "alg": "none" cannot pass.
func VerifyJWT(tok string, secret []byte, now time.Time) (Claims, error) {
	var c Claims
	h, rest, ok := strings.Cut(tok, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return c, ErrJWTMalformed
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(h)
	pb, err2 := base64.RawURLEncoding.DecodeString(p)
	sb, err3 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || err3 != nil {
		return c, ErrJWTMalformed
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &hdr) != nil {
		return c, ErrJWTMalformed
	}
	if hdr.Alg != "HS256" {
		return c, ErrJWTAlg
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tok[:len(h)+1+len(p)]))
	if !hmac.Equal(m.Sum(nil), sb) {
		return c, ErrJWTSignature
	}
	if json.Unmarshal(pb, &c) != nil {
		return c, ErrJWTMalformed
	}
	t := float64(now.Unix())
	if c.Exp != 0 && t >= c.Exp {
		return c, ErrJWTExpired
	}
	if c.Nbf != 0 && t < c.Nbf {
		return c, ErrJWTNotYet
	}
	return c, nil
}

// SignJWT makes an HS256 JWT of claims: for tests and for operators' tools.
func SignJWT(claims any, secret []byte) (string, error) {
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(pb)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return s + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}
