// Package config is whipcast's application configuration: one YAML document
// that rejects unknown keys, then WHIPCAST_* environment overrides, then
// Validate with messages that name the key. Every key has a working default,
// so an empty document (or none at all) runs the gateway.
//
// docs/configuration.md lists every key; keep it in step with this file.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Default is the embedded default configuration, the one `make run` uses.
//
//go:embed default.yaml
var Default []byte

// Config is the whole configuration document.
type Config struct {
	HTTP   HTTP   `yaml:"http"`
	WebRTC WebRTC `yaml:"webrtc"`
	Auth   Auth   `yaml:"auth"`
	HLS    HLS    `yaml:"hls"`
	DASH   DASH   `yaml:"dash"`
	Log    Log    `yaml:"log"`
	// Storage and Streams: config/storage.go.
	Storage Storage      `yaml:"storage"`
	Origin  Origin       `yaml:"origin"`
	Streams []StreamRule `yaml:"streams"`
	// Audio chooses the HLS/DASH/recording audio codec and configures the
	// Opus→AAC transcode (used by those and by RTMP outputs).
	Audio Audio `yaml:"audio"`
	// Filters bounds the filter stages of `streams[].filters`.
	Filters FilterStages `yaml:"filters"`
	// Rooms: config/rooms.go.
	Rooms Rooms `yaml:"rooms"`
	// Limits: admission control, config/limits.go.
	Limits Limits `yaml:"limits"`
	// Runtime: config/runtime.go.
	Runtime Runtime `yaml:"runtime"`
}

// Audio configures the AAC that whipcast makes from WebRTC's Opus, once per
// stream, for consumers that need it (HLS/DASH/recordings by default, RTMP).
type Audio struct {
	// Codec is the audio of HLS, DASH and recordings: aac (Opus transcoded
	// once per stream; Safari plays it natively) or opus (passthrough).
	// Default aac. A build without codec support (-tags nocodec) falls back
	// to opus and says so at start.
	Codec string `yaml:"codec"`
	// Bitrate of the AAC-LC encoder, e.g. 128k. Default 128k.
	Bitrate Bitrate `yaml:"bitrate"`
}

// Values of audio.codec.
const (
	AudioAAC  = "aac"
	AudioOpus = "opus"
)

// RestreamEnabled reports whether any rule pushes anywhere.
func (c *Config) RestreamEnabled() bool {
	for _, r := range c.Streams {
		if len(r.Restream) > 0 {
			return true
		}
	}
	return false
}

// HTTP is the one HTTP listener: WHIP, HLS, health.
type HTTP struct {
	// Addr is the listen address. Default ":8080".
	Addr string `yaml:"addr"`
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// whose X-Forwarded-For names the client, for limits.rate. Default
	// none: the client is the connection's address.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TLS serves the same listener over HTTPS (config/tls.go). Default
	// off: plain HTTP.
	TLS TLS `yaml:"tls"`
}

// WebRTC is the media transport: one UDP port shared by every session (ICE
// UDP mux) and ICE-TCP on the same port number.
type WebRTC struct {
	// Port is the UDP (and ICE-TCP) port. Default 8189.
	Port int `yaml:"port"`
	// ListenIP binds the media port to one address. Default "" (all).
	ListenIP string `yaml:"listen_ip"`
	// PublicIPs are advertised as host candidates instead of the machine's
	// own addresses (NAT 1:1, containers). Default none.
	PublicIPs []string `yaml:"public_ips"`
	// IncludeLoopback also offers 127.0.0.1 candidates, for a browser on the
	// same machine. Default true.
	IncludeLoopback *bool `yaml:"include_loopback"`
	// UDPBuffer is SO_RCVBUF/SO_SNDBUF of the shared socket. Default 4MiB.
	UDPBuffer Size `yaml:"udp_buffer"`
	// KeyframeInterval is the longest time without a keyframe before the
	// gateway asks the publisher for one (PLI). Default: hls.segment.
	KeyframeInterval time.Duration `yaml:"keyframe_interval"`
	// ReconnectWindow is how long a stream whose publisher dropped (DELETE,
	// ICE failure, media timeout) waits for a publish of the same name,
	// which then continues the same outputs (HLS playlist, DASH MPD, RTMP
	// connections, recording). The playlist gets EXT-X-ENDLIST, stream.ended
	// is sent, RTMP closes and the recording is finalised only when it has
	// passed. Default 10s; 0 ends a stream as soon as its publisher leaves.
	ReconnectWindow time.Duration `yaml:"reconnect_window"`
	// ICEServers are STUN and TURN servers (config/iceservers.go) offered
	// to WHIP and WHEP clients in Link headers; the TURN ones are used by
	// the gateway's own ICE agent too. Default none.
	ICEServers []ICEServer `yaml:"ice_servers"`
	// ICETransport is which candidates the gateway's own ICE agent offers:
	// all (host, ICE-TCP, server-reflexive, relay) or relay (only relayed
	// addresses from the TURN servers of ice_servers: a node whose own
	// addresses must not be given out, or that is reachable only through
	// TURN). Default all.
	ICETransport string `yaml:"ice_transport"`
}

// Auth holds the shared-secret tokens. Empty means open (the API: to
// loopback clients only).
type Auth struct {
	// AdminToken, when set, is required as "Authorization: Bearer" on /v1.
	// Default "": /v1 answers loopback clients only.
	AdminToken string `yaml:"admin_token"`
	// PublishToken, when set, is required as "Authorization: Bearer" on WHIP.
	PublishToken string `yaml:"publish_token"`
	// PlayToken, when set, gates HLS and DASH (?token= or Bearer).
	PlayToken string `yaml:"play_token"`
	// JWTSecret, when set, accepts HS256 JWTs (sub = stream glob, perm =
	// publish/play) for publishing and playing, and gates playback.
	JWTSecret string `yaml:"jwt_secret"`
}

// HLS shapes the Low-Latency HLS output.
type HLS struct {
	// Segment is the segment target; segments are cut at the first keyframe
	// past it. Default 2s.
	Segment time.Duration `yaml:"segment"`
	// Part is the LL-HLS part target. Default 200ms.
	Part time.Duration `yaml:"part"`
	// Window is how many segments the live playlist keeps. Default 7.
	Window int `yaml:"window"`
	// Grace is how long an ended stream's playlist (with EXT-X-ENDLIST) stays
	// served. Default 30s.
	Grace time.Duration `yaml:"grace"`
	// Idle is how long a stream stays packaged (transmuxed, and its audio
	// transcoded to AAC) after the last HLS or DASH request for it, when no
	// recording or origin rule wants it. The first request of a stream that
	// is not packaged starts it and waits for its first segment. Default 30s.
	Idle time.Duration `yaml:"idle"`
	// Always packages every stream from its publish to its end, watched or
	// not: no first-request wait, the whole publish in the window, at the
	// cost of a transmux and (audio.codec aac) a transcode per stream.
	// Default false (on demand).
	Always bool `yaml:"always"`
}

// DASH shapes the MPEG-DASH output. It serves the same CMAF segments as HLS
// (hls.segment, hls.part, hls.window and hls.grace apply to it too).
type DASH struct {
	// Enabled serves /dash/{stream}/manifest.mpd. Default true.
	Enabled bool `yaml:"enabled"`
	// LowLatency turns on the DASH-IF low-latency profile: the segment in
	// production is announced and delivered chunk by chunk. Default true.
	LowLatency bool `yaml:"low_latency"`
	// TargetLatency is the latency low-latency players aim for
	// (ServiceDescription). Default 2500ms.
	TargetLatency time.Duration `yaml:"target_latency"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Load parses the default document, then doc (when not nil) over it, then
// the environment, and validates the result.
func Load(doc []byte, environ []string) (*Config, error) {
	var c Config
	if err := decode(Default, &c); err != nil {
		return nil, fmt.Errorf("embedded default: %w", err)
	}
	if doc != nil {
		if err := decode(doc, &c); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadFile is Load with the document read from path.
func LoadFile(path string, environ []string) (*Config, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Load(doc, environ)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func decode(doc []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Validate checks every key and names the one that is wrong.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...)))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "%q is not host:port", c.HTTP.Addr)
	}
	if c.WebRTC.Port < 0 || c.WebRTC.Port > 65535 {
		bad("webrtc.port", "%d is out of range 0-65535", c.WebRTC.Port)
	}
	if c.WebRTC.ListenIP != "" && net.ParseIP(c.WebRTC.ListenIP) == nil {
		bad("webrtc.listen_ip", "%q is not an IP address", c.WebRTC.ListenIP)
	}
	for i, ip := range c.WebRTC.PublicIPs {
		if net.ParseIP(ip) == nil {
			bad(fmt.Sprintf("webrtc.public_ips[%d]", i), "%q is not an IP address", ip)
		}
	}
	if c.WebRTC.UDPBuffer < 0 || c.WebRTC.UDPBuffer > 1<<30 {
		bad("webrtc.udp_buffer", "%d is out of range 0-1GiB", c.WebRTC.UDPBuffer)
	}
	if c.WebRTC.KeyframeInterval < 0 {
		bad("webrtc.keyframe_interval", "must not be negative")
	}
	if c.WebRTC.ReconnectWindow < 0 || c.WebRTC.ReconnectWindow > 10*time.Minute {
		bad("webrtc.reconnect_window", "%s is out of range 0-10m", c.WebRTC.ReconnectWindow)
	}
	if c.HLS.Segment < 500*time.Millisecond || c.HLS.Segment > 30*time.Second {
		bad("hls.segment", "%s is out of range 500ms-30s", c.HLS.Segment)
	}
	if c.HLS.Part < 50*time.Millisecond || c.HLS.Part > c.HLS.Segment {
		bad("hls.part", "%s is out of range 50ms-hls.segment", c.HLS.Part)
	}
	if c.HLS.Window < 3 || c.HLS.Window > 100 {
		bad("hls.window", "%d is out of range 3-100", c.HLS.Window)
	}
	if c.HLS.Grace < 0 {
		bad("hls.grace", "must not be negative")
	}
	if c.HLS.Idle < 500*time.Millisecond || c.HLS.Idle > 24*time.Hour {
		bad("hls.idle", "%s is out of range 500ms-24h", c.HLS.Idle)
	}
	if c.DASH.TargetLatency < 500*time.Millisecond || c.DASH.TargetLatency > 30*time.Second {
		bad("dash.target_latency", "%s is out of range 500ms-30s", c.DASH.TargetLatency)
	}
	switch c.Audio.Codec {
	case AudioAAC, AudioOpus:
	default:
		bad("audio.codec", "%q is not one of aac, opus", c.Audio.Codec)
	}
	if c.Audio.Bitrate < 16000 || c.Audio.Bitrate > 512000 {
		bad("audio.bitrate", "%d is out of range 16k-512k", c.Audio.Bitrate)
	}
	for i := range c.Streams {
		r := &c.Streams[i]
		if r.Match == "" {
			r.Match = "*"
		}
		for j, d := range r.Restream {
			if err := checkRTMPURL(strings.ReplaceAll(d.URL, "{stream}", "x")); err != nil {
				bad(fmt.Sprintf("streams[%d].restream[%d]", i, j), "%v", err)
			}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	for _, kv := range [][2]string{{"auth.admin_token", c.Auth.AdminToken}, {"auth.publish_token", c.Auth.PublishToken}, {"auth.play_token", c.Auth.PlayToken}} {
		if strings.ContainsAny(kv[1], " \t\r\n") {
			bad(kv[0], "must not contain white space") // the value is a secret: not echoed
		}
	}
	if c.Auth.JWTSecret != "" && len(c.Auth.JWTSecret) < 32 {
		bad("auth.jwt_secret", "must be at least 32 characters (HS256 key)")
	}
	c.validateTLS(bad)
	c.validateICEServers(bad)
	c.validateStorage(bad)
	c.validateFilters(bad)
	c.validateMotion(bad)
	c.validateRooms(bad)
	c.validateLimits(bad)
	c.validateRuntime(bad)
	return errors.Join(errs...)
}

// Loopback reports whether webrtc.include_loopback is on.
func (w WebRTC) Loopback() bool { return w.IncludeLoopback == nil || *w.IncludeLoopback }

// checkRTMPURL accepts rtmp(s)://host[:port]/app/key. Errors never repeat
// the URL: it holds a stream key.
func checkRTMPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "rtmp" && u.Scheme != "rtmps" {
		return fmt.Errorf("scheme %q is not rtmp or rtmps", u.Scheme)
	}
	app, key, _ := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if u.Hostname() == "" || app == "" || (key == "" && u.RawQuery == "") {
		return fmt.Errorf("not %s://host[:port]/app/key", u.Scheme)
	}
	return nil
}

// Bitrate is bits per second written as 128000, "128k" or "1.5M".
type Bitrate int

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Bitrate) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	mult := 1.0
	switch {
	case strings.HasSuffix(v, "k"):
		v, mult = strings.TrimSuffix(v, "k"), 1e3
	case strings.HasSuffix(v, "M"):
		v, mult = strings.TrimSuffix(v, "M"), 1e6
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f*mult > 1e10 {
		return fmt.Errorf("line %d: %q is not a bitrate like 128k", n.Line, n.Value)
	}
	*b = Bitrate(f * mult)
	return nil
}

// Size is a byte count written as 4194304, "4MiB", "512KiB" or "1GiB".
type Size int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// ParseSize parses a Size.
func ParseSize(v string) (Size, error) {
	v = strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size like 4MiB", v)
	}
	return Size(n * mult), nil
}

// applyEnv applies WHIPCAST_<SECTION>_<KEY>=value overrides, e.g.
// WHIPCAST_HTTP_ADDR=:9000 or WHIPCAST_WEBRTC_PUBLIC_IPS=1.2.3.4,5.6.7.8.
// Values are parsed as YAML scalars of the key's type.
func applyEnv(c *Config, environ []string) error {
	keys := map[string]reflect.Value{}
	collect(reflect.ValueOf(c).Elem(), "WHIPCAST", keys)
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "WHIPCAST_") {
			continue
		}
		field, ok := keys[k]
		if !ok {
			return fmt.Errorf("config: environment variable %s names no key", k)
		}
		doc := v
		if field.Kind() == reflect.Slice {
			doc = "[" + v + "]"
		}
		if err := yaml.Unmarshal([]byte(doc), field.Addr().Interface()); err != nil {
			return fmt.Errorf("config: %s: %w", k, err)
		}
	}
	return nil
}

func collect(v reflect.Value, prefix string, out map[string]reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		name := prefix + "_" + strings.ToUpper(tag)
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			collect(f, name, out)
			continue
		}
		out[name] = f
	}
}
