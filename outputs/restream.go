// Package outputs starts and stops the consumers that leave the process.
// Restream runs the RTMP pushers that the config's stream rules ask for.
package outputs

import (
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/rtmp"
	"github.com/whipcast/whipcast/stages"
)

// Rule is one `streams:` entry: streams whose name matches Match get pushed
// to every Restream destination ({stream} replaced by the stream name).
type Rule struct {
	Match    string
	Restream []Destination
}

// Destination is one RTMP(S) server to push to.
type Destination struct {
	// URL is rtmp(s)://host[:port]/app/key; {stream} is replaced.
	URL string
	// Enhanced sends audio as E-RTMP Opus (no AAC transcode) instead of
	// legacy AAC; the server must speak Enhanced RTMP v2.
	Enhanced bool
}

// RestreamSettings configures Restream.
type RestreamSettings struct {
	// Rules are tried in order; the first whose Match fits the stream wins.
	Rules []Rule
	// AudioBitrate is announced to RTMP servers in onMetaData (bits/s).
	AudioBitrate int
	// Backoff shapes reconnect delays of every pusher.
	Backoff rtmp.Backoff
	// TLS is the client configuration for rtmps (custom CA). Default: system roots.
	TLS *tls.Config
}

// Restream starts, on each publish, the pushers of the first matching rule
// and stops them when the stream ends. A failing destination affects only
// itself.
type Restream struct {
	s   RestreamSettings
	aac *stages.AAC
	log *slog.Logger

	mu      sync.Mutex
	byName  map[string][]*rtmp.Pusher
	wg      sync.WaitGroup
	closing chan struct{}
	once    sync.Once
}

// NewRestream makes the manager; aac provides the AAC-audio stream.
func NewRestream(s RestreamSettings, aac *stages.AAC, log *slog.Logger) *Restream {
	return &Restream{s: s, aac: aac, log: log, byName: map[string][]*rtmp.Pusher{}, closing: make(chan struct{})}
}

// Attach starts pushers for every stream published on reg from now on.
func (r *Restream) Attach(reg *media.Registry) { reg.OnPublish(r.onPublish) }

// Enabled reports whether any rule has a destination.
func (r *Restream) Enabled() bool {
	for _, rule := range r.s.Rules {
		if len(rule.Restream) > 0 {
			return true
		}
	}
	return false
}

// URLs returns the destination URLs for a stream name (first matching rule).
func (r *Restream) URLs(name string) []string {
	ds := r.Destinations(name)
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.URL
	}
	return out
}

// Destinations returns the destinations for a stream name (first matching
// rule), {stream} replaced.
func (r *Restream) Destinations(name string) []Destination {
	for _, rule := range r.s.Rules {
		if media.MatchName(rule.Match, name) {
			out := make([]Destination, len(rule.Restream))
			for i, d := range rule.Restream {
				out[i] = Destination{URL: strings.ReplaceAll(d.URL, "{stream}", name), Enhanced: d.Enhanced}
			}
			return out
		}
	}
	return nil
}

// Status lists the pushers of a stream (keys redacted).
func (r *Restream) Status(name string) []rtmp.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []rtmp.Status
	for _, p := range r.byName[name] {
		out = append(out, p.Status())
	}
	return out
}

func (r *Restream) onPublish(src *media.Stream) {
	dests := r.Destinations(src.Name)
	if len(dests) == 0 {
		return
	}
	select {
	case <-r.closing:
		return
	default:
	}
	log := r.log.With("stream", src.Name)
	// Legacy destinations read video + AAC from the shared Opus→AAC stage;
	// enhanced ones read the published stream (Opus passes through), so a
	// stream with only enhanced destinations starts no transcode.
	var derived *media.Stream
	release := func() {}
	for _, d := range dests {
		if d.Enhanced {
			continue
		}
		var err error
		derived, release, err = r.aac.Acquire(src)
		if err != nil {
			log.Error("restream to legacy (AAC) destinations disabled for this stream", "err", err)
			derived = nil
		}
		break
	}
	var ps []*rtmp.Pusher
	for _, d := range dests {
		in, audio := derived, r.s.AudioBitrate
		if d.Enhanced {
			// The Opus bitrate is the publisher's: not announced.
			in, audio = src, 0
		}
		if in == nil {
			continue
		}
		p, err := rtmp.New(in, rtmp.Settings{
			URL: d.URL, Enhanced: d.Enhanced, AudioBitrate: audio, Backoff: r.s.Backoff, TLS: r.s.TLS, Logger: log,
		})
		if err != nil {
			log.Error("restream destination refused", "err", err) // ParseURL redacts
			continue
		}
		ps = append(ps, p)
	}
	r.mu.Lock()
	r.byName[src.Name] = ps
	r.mu.Unlock()
	for _, p := range ps {
		p.Start()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case <-src.Done():
		case <-r.closing:
		}
		// Pushers drain what the derived stream still holds, then stop.
		for _, p := range ps {
			select {
			case <-p.Done():
			case <-r.closing:
			}
			p.Close()
		}
		release()
		r.mu.Lock()
		if samePushers(r.byName[src.Name], ps) {
			delete(r.byName, src.Name)
		}
		r.mu.Unlock()
	}()
}

func samePushers(a, b []*rtmp.Pusher) bool {
	return len(a) == len(b) && (len(a) == 0 || a[0] == b[0])
}

// Close stops every pusher and waits. Safe to call more than once.
func (r *Restream) Close() {
	r.once.Do(func() { close(r.closing) })
	r.wg.Wait()
}
