package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Motion turns on motion detection for a stream (`streams[].motion`, or
// PUT /v1/streams/{stream}/motion): no re-encode, events motion.start and
// motion.stop on /v1/events and, when Webhook is set, to that URL.
type Motion struct {
	// Sensitivity from 0 (exclusive: only big changes) to 1. Default 0.5.
	Sensitivity float64 `yaml:"sensitivity"`
	// Region is where to look, in fractions of the picture. Default whole.
	Region MotionRegion `yaml:"region"`
	// StopAfter is how long without motion ends it. Default 2s.
	StopAfter time.Duration `yaml:"stop_after"`
	// Webhook, when set, is an http(s) URL that receives every motion.start
	// and motion.stop as a JSON POST (the event as on /v1/events). Default
	// none.
	Webhook string `yaml:"webhook"`
	// WebhookSecret, when set, signs each webhook POST with HMAC-SHA256
	// (docs/api.md "Motion webhooks"). Default none.
	WebhookSecret string `yaml:"webhook_secret"`
}

// MotionRegion is a rectangle in fractions (0–1) of the picture.
type MotionRegion struct {
	X      float64 `yaml:"x" json:"x"`
	Y      float64 `yaml:"y" json:"y"`
	Width  float64 `yaml:"width" json:"width"`
	Height float64 `yaml:"height" json:"height"`
}

// Validate checks a motion setting; the config and the API both use it.
// The error is a *FieldError naming the key.
func (m Motion) Validate() error {
	bad := func(key, format string, a ...any) error {
		return &FieldError{Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	if m.Sensitivity < 0 || m.Sensitivity > 1 {
		return bad("sensitivity", "%g is out of range 0-1", m.Sensitivity)
	}
	g := m.Region
	if g.X < 0 || g.Y < 0 || g.Width < 0 || g.Height < 0 || g.X+g.Width > 1 || g.Y+g.Height > 1 {
		return bad("region", "x, y, width, height are fractions of the picture: x+width and y+height at most 1")
	}
	if m.StopAfter < 0 || m.StopAfter > time.Hour {
		return bad("stop_after", "%s is out of range 0-1h", m.StopAfter)
	}
	if m.Webhook != "" {
		if err := checkWebhookURL(m.Webhook); err != nil {
			return bad("webhook", "%v", err)
		}
	} else if m.WebhookSecret != "" {
		return bad("webhook_secret", "is set without a webhook")
	}
	return nil
}

// checkWebhookURL accepts absolute http and https URLs. Errors never repeat
// the URL: its query may hold a token.
func checkWebhookURL(raw string) error {
	if len(raw) > 2048 {
		return fmt.Errorf("longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("has no host")
	}
	return nil
}

func (c *Config) validateMotion(bad func(key, format string, a ...any)) {
	for i, r := range c.Streams {
		if r.Motion == nil {
			continue
		}
		if err := r.Motion.Validate(); err != nil {
			badField(bad, fmt.Sprintf("streams[%d].motion", i), err)
		}
	}
}

// ParseMotion decodes and validates a motion setting as
// PUT /v1/streams/{stream}/motion takes it: a JSON object with the keys of
// `streams[].motion` (sensitivity, region {x, y, width, height}, stop_after
// as "2s" or seconds, webhook, webhook_secret), as strictly as the YAML:
// unknown or repeated keys are refused.
func ParseMotion(body []byte) (Motion, error) {
	var m Motion
	fields, err := strictObject(body, "sensitivity", "region", "stop_after", "webhook", "webhook_secret")
	if err != nil {
		return m, fmt.Errorf("motion: %w", err)
	}
	for k, v := range fields {
		var err error
		switch k {
		case "sensitivity":
			err = json.Unmarshal(v, &m.Sensitivity)
		case "region":
			err = decodeStrict(v, &m.Region, "x", "y", "width", "height")
		case "stop_after":
			m.StopAfter, err = parseJSONDuration(v)
		case "webhook":
			err = json.Unmarshal(v, &m.Webhook)
		case "webhook_secret":
			err = json.Unmarshal(v, &m.WebhookSecret)
		}
		if err != nil {
			return Motion{}, &FieldError{Key: k, Msg: jsonMessage(err)}
		}
	}
	if err := m.Validate(); err != nil {
		return Motion{}, err
	}
	return m, nil
}

// parseJSONDuration reads "2s"-style strings or a number of seconds.
func parseJSONDuration(v json.RawMessage) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration like 2s", s)
		}
		return d, nil
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, fmt.Errorf("%s is not a duration like \"2s\" or a number of seconds", strings.TrimSpace(string(v)))
	}
	return time.Duration(f * float64(time.Second)), nil
}
