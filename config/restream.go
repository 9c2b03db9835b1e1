package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Destination is one `streams[].restream` entry: an RTMP(S) URL, written
// either as a plain string or as {url: ..., enhanced: true}.
type Destination struct {
	// URL is rtmp://host[:port]/app/key or rtmps://...; {stream} is replaced
	// by the stream name.
	URL string `yaml:"url"`
	// Enhanced marks a server that speaks Enhanced RTMP (E-RTMP v2): audio
	// goes as Opus (FourCC "Opus") without the AAC transcode. Default false.
	Enhanced bool `yaml:"enhanced"`
	// MaxRetries is how many failed reconnects in a row end the
	// destination in state failed (with the last error), for a key that is
	// refused for good. Default 0: retry for as long as the stream is live,
	// which rides out an outage of the platform.
	MaxRetries int `yaml:"max_retries"`
}

// UnmarshalYAML implements yaml.Unmarshaler: a scalar is the URL, a mapping
// takes the keys url, enhanced and max_retries and refuses any other.
func (d *Destination) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*d = Destination{URL: n.Value}
		return nil
	case yaml.MappingNode:
		var out Destination
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var err error
			switch k.Value {
			case "url":
				err = v.Decode(&out.URL)
			case "enhanced":
				err = v.Decode(&out.Enhanced)
			case "max_retries":
				err = v.Decode(&out.MaxRetries)
				if err == nil && out.MaxRetries < 0 {
					err = fmt.Errorf("line %d: max_retries %d: must be 0 (retry forever) or more", v.Line, out.MaxRetries)
				}
			default:
				return fmt.Errorf("line %d: field %s not found in a restream destination (url, enhanced, max_retries)", k.Line, k.Value)
			}
			if err != nil {
				return err
			}
		}
		*d = out
		return nil
	}
	return fmt.Errorf("line %d: a restream destination is a URL or {url: ..., enhanced: true}", n.Line)
}
