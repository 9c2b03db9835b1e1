// Package outputs starts and stops the consumers that leave the process.
// Restream runs the RTMP pushers that the config's stream rules ask for.
package outputs

import (
	"context"
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
	// MaxRetries is how many failed reconnects in a row end the
	// destination in StateFailed; 0 retries for as long as the stream is
	// live.
	MaxRetries int
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
	// OnState, when set, is told every state change of every destination
	// (stream name, destination id, new status with the key redacted), on
	// the pusher's goroutine. It must not block.
	OnState func(stream, id string, s rtmp.Status)
}

// Restream runs the RTMP(S) pushers of live streams: on each publish those
// of the first matching rule, and any added through the API while live.
// A failing destination affects only itself. Legacy destinations read video
// + AAC from the stream's Opus→AAC stage, which runs while the stream has at
// least one of them; enhanced (E-RTMP) destinations read the published
// stream itself, Opus passing through.
type Restream struct {
	s   RestreamSettings
	aac *stages.AAC
	log *slog.Logger

	mu      sync.Mutex
	live    map[string]*restreamed
	nextID  uint64
	closed  bool          // set with closing, under mu
	closing chan struct{} // closed by Close: every stream's run stops its pushers at once
}

// restreamed is one live stream and its destinations. Guarded by Restream.mu.
type restreamed struct {
	src     *media.Stream
	derived *media.Stream // video + AAC; nil while no legacy destination needs it
	release func()
	dests   []*destination
	ended   bool
}

// legacy counts the destinations that read the AAC stream.
func (st *restreamed) legacy() int {
	n := 0
	for _, d := range st.dests {
		if !d.enhanced {
			n++
		}
	}
	return n
}

// destination is one pusher with the id the API knows it by.
type destination struct {
	id       string
	enhanced bool
	p        *rtmp.Pusher
}

// Output is one destination of a stream as List reports it.
type Output struct {
	// ID names the destination in Remove.
	ID string
	// Enhanced is true for an E-RTMP destination (Opus passed through).
	Enhanced bool
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

// Attach starts pushers for every stream published on reg from now on: a
// consumer of reg (media.Registry.ConsumePrepared) whose prepare starts
// the stream's pushers before its first frame is written (each subscribes
// then, so the first keyframe is theirs) and whose run, which the registry
// owns, stops them when the stream ends.
func (r *Restream) Attach(reg *media.Registry) { reg.ConsumePrepared("restream", r.prepare) }

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

// Status returns the state of each destination of a stream (keys redacted).
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
		out = append(out, Output{ID: d.id, Enhanced: d.enhanced, Status: d.p.Status()})
	}
	return out
}

// Add starts pushing a live stream to d ({stream} in the URL replaced) and
// returns the new destination. A bad URL is refused with the error of
// rtmp.ParseURL, which never shows the stream key.
func (r *Restream) Add(name string, d Destination) (Output, error) {
	d.URL = strings.ReplaceAll(d.URL, "{stream}", name)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.live[name]
	if st == nil || st.ended || r.closed {
		return Output{}, ErrNotLive
	}
	dst, err := r.addLocked(st, d)
	if err != nil {
		return Output{}, err
	}
	return Output{ID: dst.id, Enhanced: dst.enhanced, Status: dst.p.Status()}, nil
}

// Remove stops one destination of a live stream; the stream's AAC stage
// stops with its last legacy destination.
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
	if st.derived != nil && st.legacy() == 0 {
		release, st.derived, st.release = st.release, nil, nil
	}
	r.mu.Unlock()
	d.p.Close()
	if release != nil {
		release()
	}
	return nil
}

// addLocked makes and starts a pusher; a legacy destination acquires the
// AAC stage first when the stream has none. Called with r.mu held.
func (r *Restream) addLocked(st *restreamed, d Destination) (*destination, error) {
	in, audio := st.src, 0 // enhanced: Opus as published, bitrate not announced
	if !d.Enhanced {
		if st.derived == nil {
			derived, release, err := r.aac.Acquire(st.src)
			if err != nil {
				return nil, err
			}
			st.derived, st.release = derived, release
		}
		in, audio = st.derived, r.s.AudioBitrate
	}
	id := "rtmp-" + strconv.FormatUint(r.nextID+1, 10)
	set := rtmp.Settings{
		URL: d.URL, Enhanced: d.Enhanced, MaxRetries: d.MaxRetries, AudioBitrate: audio, Backoff: r.s.Backoff, TLS: r.s.TLS,
		Logger: r.log.With("stream", st.src.Name),
	}
	if on := r.s.OnState; on != nil {
		name := st.src.Name
		set.OnState = func(s rtmp.Status) { on(name, id, s) }
	}
	p, err := rtmp.New(in, set)
	if err != nil {
		if st.derived != nil && st.legacy() == 0 {
			st.release()
			st.derived, st.release = nil, nil
		}
		return nil, err
	}
	r.nextID++
	dst := &destination{id: id, enhanced: d.Enhanced, p: p}
	st.dests = append(st.dests, dst)
	p.Start()
	return dst, nil
}

// prepare tracks a newly published stream (the API may add destinations to
// any live stream) and starts the pushers of its rule's destinations; it
// returns the stream's run. It runs on the announcing goroutine: the
// pushers' readers and the AAC stage's are subscribed before the first
// frame, and nothing here opens a codec or dials (the pushers and the
// stage do that on their own goroutines).
func (r *Restream) prepare(src *media.Stream) func(context.Context) error {
	log := r.log.With("stream", src.Name)
	st := &restreamed{src: src}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.live[src.Name] = st
	for _, d := range r.Destinations(src.Name) {
		if _, err := r.addLocked(st, d); err != nil {
			log.Error("restream destination refused", "err", err) // ParseURL redacts
		}
	}
	return func(ctx context.Context) error {
		r.run(ctx, st)
		return nil
	}
}

// run waits for the stream's end (ctx), then lets each pusher drain what
// its input still holds and stop (each ends with its stream, a retrying
// one too); after Close, it stops them at once.
func (r *Restream) run(ctx context.Context, st *restreamed) {
	<-ctx.Done()
	r.mu.Lock()
	st.ended = true
	dests, release := st.dests, st.release
	if r.live[st.src.Name] == st {
		delete(r.live, st.src.Name)
	}
	r.mu.Unlock()
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
}

// Close refuses new streams and destinations and makes every stream's run
// stop its pushers at once, without the drain, when its stream ends. The
// runs belong to the registry, whose Close ends the streams and waits for
// them: call this first. Safe to call more than once.
func (r *Restream) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.closing)
	}
}
