package config

import (
	"strings"
	"time"

	"github.com/whipcast/whipcast/media"
)

// Storage is where recordings go (docs/configuration.md, "storage").
type Storage struct {
	// Type is local or s3. Default local.
	Type string `yaml:"type"`
	// Path is the directory of type local. Default ./recordings.
	Path string `yaml:"path"`
	// SpoolDir holds every object until its upload is confirmed, and the
	// open recordings' work files. Default ./spool.
	SpoolDir string `yaml:"spool_dir"`
	// ShutdownTimeout bounds finalising recordings and draining uploads on
	// SIGTERM; what is left stays in the spool. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Queue is how many segments per track a recording, and an origin
	// publish, hold in memory while storage is slower than the stream;
	// beyond it they drop segments (state retrying) rather than stall live
	// HLS/DASH. Default 32 (about a minute of 2 s segments).
	Queue int `yaml:"queue"`
	// S3 configures type s3.
	S3 S3 `yaml:"s3"`
}

// S3 is an S3 or S3-compatible bucket.
type S3 struct {
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	PathStyle bool   `yaml:"path_style"`
	// AccessKey and SecretKey: empty means the standard AWS chain.
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
}

// StreamRule applies to the streams whose name matches Match; the first
// matching rule of Config.Streams wins.
type StreamRule struct {
	// Match is a glob on the stream name: "*" matches any run of characters
	// (including "/"), "?" any one character. Default "*".
	Match string `yaml:"match"`
	// Record records the stream to storage. Default false.
	Record bool `yaml:"record"`
	// Restream lists RTMP(S) destinations (rtmp://host[:port]/app/key, or
	// {url, enhanced} for E-RTMP) to push the stream to; {stream} is replaced
	// by the stream name. Default none.
	Restream []Destination `yaml:"restream"`
	// Origin publishes the stream's live HLS and DASH to storage, for a CDN
	// with the bucket as origin (docs/origin.md). Default false.
	Origin bool `yaml:"origin"`
	// Filters, when set, publish a filtered copy of the stream as
	// {stream}/filtered (docs/configuration.md). Default none.
	Filters []Filter `yaml:"filters"`
	// Motion, when set, detects motion in the stream's video and sends
	// motion.start/motion.stop events. Default off.
	Motion *Motion `yaml:"motion"`
}

// Origin shapes the live HLS/DASH written to storage for streams whose rule
// says origin: true.
type Origin struct {
	// Prefix is where, under the storage prefix, streams go:
	// {prefix}/{stream}/index.m3u8. Default "live".
	Prefix string `yaml:"prefix"`
	// Window is how many segments the playlists list. Default 7.
	Window int `yaml:"window"`
	// Keep keeps every segment (DVR) instead of deleting those that left
	// the window. Default false.
	Keep bool `yaml:"keep"`
}

// Rule returns the first rule matching stream, and false when none does.
func (c *Config) Rule(stream string) (StreamRule, bool) {
	for _, r := range c.Streams {
		if media.MatchName(r.Match, stream) {
			return r, true
		}
	}
	return StreamRule{}, false
}

func (c *Config) validateStorage(bad func(key, format string, a ...any)) {
	s := c.Storage
	switch s.Type {
	case "local":
		if s.Path == "" {
			bad("storage.path", "must not be empty for type local")
		}
	case "s3":
		if s.S3.Bucket == "" {
			bad("storage.s3.bucket", "must not be empty for type s3")
		}
		if (s.S3.AccessKey == "") != (s.S3.SecretKey == "") {
			bad("storage.s3.access_key", "access_key and secret_key go together")
		}
		if strings.Contains(s.S3.Prefix, "..") || strings.HasPrefix(s.S3.Prefix, "/") {
			bad("storage.s3.prefix", "%q must be relative and without ..", s.S3.Prefix)
		}
		if s.S3.Endpoint != "" && !strings.HasPrefix(s.S3.Endpoint, "http://") && !strings.HasPrefix(s.S3.Endpoint, "https://") {
			bad("storage.s3.endpoint", "%q is not an http(s) URL", s.S3.Endpoint)
		}
	default:
		bad("storage.type", "%q is not one of local, s3", s.Type)
	}
	if s.SpoolDir == "" {
		bad("storage.spool_dir", "must not be empty")
	}
	if s.ShutdownTimeout <= 0 {
		bad("storage.shutdown_timeout", "must be positive")
	}
	if s.Queue < 1 || s.Queue > 10000 {
		bad("storage.queue", "%d is out of range 1-10000 (segments per track)", s.Queue)
	}
	o := c.Origin
	if o.Prefix == "" || strings.Contains(o.Prefix, "..") || strings.HasPrefix(o.Prefix, "/") {
		bad("origin.prefix", "%q must be non-empty, relative and without ..", o.Prefix)
	}
	if o.Window < 3 || o.Window > 1000 {
		bad("origin.window", "%d is out of range 3-1000", o.Window)
	}
}
