// Package outputs starts and stops the consumers that leave the process.
// Restream runs the RTMP pushers that the config's stream rules ask for.
package outputs

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/rtmp"
	"github.com/whipcast/whipcast/stages"
)

// Rule is one `streams:` entry: streams whose name matches Match get pushed
// to every Restream URL ({stream} replaced by the stream name).
type Rule struct {
	Match    string
	Restream []string
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

// Restream runs the RTMP(S) pushers of live streams: on each publish those
// of the first matching rule, and any added through the API while live.
// A failing destination affects only itself. The Opus→AAC stage of a stream
// runs while the stream has at least one destination.
type Restream struct {
	s   RestreamSettings
	aac *stages.AAC
	log *slog.Logger

	mu      sync.Mutex
	live    map[string]*restreamed
	nextID  uint64
	wg      sync.WaitGroup
	closing chan struct{}
	once    sync.Once
}

// restreamed is one live stream and its destinations. Guarded by Restream.mu.
type restreamed struct {
	src     *media.Stream
	derived *media.Stream // video + AAC; nil while there is no destination
	release func()
	dests   []*destination
	ended   bool
}

// destination is one pusher with the id the API knows it by.
type destination struct {
	id string
	p  *rtmp.Pusher
}

// Output is one destination of a stream as List reports it.
type Output struct {
	// ID names the destination in Remove.
	ID string
	rtmp.Status
}

// ErrNotLive is returned by Add and Remove for a stream that is not live.
var ErrNotLive = errors.New("stream is not live")

// ErrNoDestination is returned by Remove for an unknown destination id.
var ErrNoDestination = errors.New("no such destination")

// NewRestream makes the manager; aac provides the AAC-audio stream.
func NewRestream(s RestreamSettings, aac *stages.AAC, log *slog.Logger) *Restream {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Restream{s: s, aac: aac, log: log, live: map[string]*restreamed{}, closing: make(chan struct{})}
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

// URLs returns the destinations for a stream name (first matching rule).
func (r *Restream) URLs(name string) []string {
	for _, rule := range r.s.Rules {
		if media.MatchName(rule.Match, name) {
			out := make([]string, len(rule.Restream))
			for i, u := range rule.Restream {
				out[i] = strings.ReplaceAll(u, "{stream}", name)
			}
			return out
		}
	}
	return nil
}

// Status returns the state of each destination of a stream.
func (r *Restream) Status(name string) []rtmp.Status {
	var out []rtmp.Status
	for _, o := range r.List(name) {
		out = append(out, o.Status)
	}
	return out
}

// List returns the destinations of a live stream with their ids.
func (r *Restream) List(name string) []Output {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.live[name]
	if st == nil {
		return nil
	}
	out := make([]Output, 0, len(st.dests))
	for _, d := range st.dests {
		out = append(out, Output{ID: d.id, Status: d.p.Status()})
	}
	return out
}

// Add starts pushing a live stream to url ({stream} replaced) and returns
// the new destination. A bad URL is refused with the error of rtmp.ParseURL,
// which never shows the stream key.
func (r *Restream) Add(name, url string) (Output, error) {
	url = strings.ReplaceAll(url, "{stream}", name)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.live[name]
	if st == nil || st.ended {
		return Output{}, ErrNotLive
	}
	d, err := r.addLocked(st, url)
	if err != nil {
		return Output{}, err
	}
	return Output{ID: d.id, Status: d.p.Status()}, nil
}

// Remove stops one destination of a live stream; the stream's AAC stage
// stops with its last destination.
func (r *Restream) Remove(name, id string) error {
	r.mu.Lock()
	st := r.live[name]
	if st == nil || st.ended {
		r.mu.Unlock()
		return ErrNotLive
	}
	i := slices.IndexFunc(st.dests, func(d *destination) bool { return d.id == id })
	if i < 0 {
		r.mu.Unlock()
		return ErrNoDestination
	}
	d := st.dests[i]
	st.dests = slices.Delete(st.dests, i, i+1)
	var release func()
	if len(st.dests) == 0 {
		release, st.derived, st.release = st.release, nil, nil
	}
	r.mu.Unlock()
	d.p.Close()
	if release != nil {
		release()
	}
	return nil
}

// addLocked makes and starts a pusher, acquiring the AAC stage first when
// the stream has none. Called with r.mu held.
func (r *Restream) addLocked(st *restreamed, url string) (*destination, error) {
	if st.derived == nil {
		derived, release, err := r.aac.Acquire(st.src)
		if err != nil {
			return nil, err
		}
		st.derived, st.release = derived, release
	}
	p, err := rtmp.New(st.derived, rtmp.Settings{
		URL: url, AudioBitrate: r.s.AudioBitrate, Backoff: r.s.Backoff, TLS: r.s.TLS,
		Logger: r.log.With("stream", st.src.Name),
	})
	if err != nil {
		if len(st.dests) == 0 {
			st.release()
			st.derived, st.release = nil, nil
		}
		return nil, err
	}
	r.nextID++
	d := &destination{id: "rtmp-" + strconv.FormatUint(r.nextID, 10), p: p}
	st.dests = append(st.dests, d)
	p.Start()
	return d, nil
}

func (r *Restream) onPublish(src *media.Stream) {
	select {
	case <-r.closing:
		return
	default:
	}
	log := r.log.With("stream", src.Name)
	st := &restreamed{src: src}
	r.mu.Lock()
	r.live[src.Name] = st
	for _, u := range r.URLs(src.Name) {
		if _, err := r.addLocked(st, u); err != nil {
			log.Error("restream destination refused", "err", err) // ParseURL redacts
		}
	}
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case <-src.Done():
		case <-r.closing:
		}
		r.mu.Lock()
		st.ended = true
		dests, release := st.dests, st.release
		if r.live[src.Name] == st {
			delete(r.live, src.Name)
		}
		r.mu.Unlock()
		// Pushers drain what the derived stream still holds, then stop.
		for _, d := range dests {
			select {
			case <-d.p.Done():
			case <-r.closing:
			}
			d.p.Close()
		}
		if release != nil {
			release()
		}
	}()
}

// Close stops every pusher and waits. Safe to call more than once.
func (r *Restream) Close() {
	r.once.Do(func() { close(r.closing) })
	r.wg.Wait()
}
