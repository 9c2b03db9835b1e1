// Package rtmp pushes a live stream to an RTMP or RTMPS server (YouTube,
// Twitch, nginx-rtmp, any ingest that takes FLV over RTMP) with
// github.com/bluenviron/gortmplib, reconnecting on its own with backoff.
package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/state"
)

// State is where a Pusher is in its life: the outputs' one model
// (outputs/state).
type State = state.State

// Pusher states, as the API and the events socket show them.
const (
	StateStarting = state.Starting
	StateLive     = state.Live
	StateRetrying = state.Retrying
	StateFailed   = state.Failed
	StateStopped  = state.Stopped
)

// Status is a Pusher's state as shown to users. It never holds the key.
type Status struct {
	// URL is the destination with the key replaced by ****.
	URL string `json:"url"`
	// State is starting, live, retrying, failed or stopped.
	State State `json:"state"`
	// LastError is the last failure in words ("" when none).
	LastError string `json:"last_error,omitempty"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
	// Connects counts successful connections (a reconnect makes it 2+).
	Connects int `json:"connects"`
	// Messages counts audio and video messages sent.
	Messages uint64 `json:"messages"`
	// Resyncs counts the times the pusher fell behind and skipped to the
	// next keyframe.
	Resyncs int `json:"resyncs"`
}

// Settings configures a Pusher. The zero value of each field is its default.
type Settings struct {
	// URL is rtmp://host[:port]/app/key or rtmps://host[:port]/app/key.
	URL string
	// AudioBitrate (bits/s) is announced in onMetaData. Default: not announced.
	AudioBitrate int
	// Enhanced sends Opus audio as Enhanced RTMP (E-RTMP v2, FourCC "Opus")
	// instead of dropping it; the stream may then carry Opus rather than
	// AAC, and no transcode is needed. Only for servers that speak E-RTMP.
	// Default false: legacy AAC only.
	Enhanced bool
	// Backoff shapes the reconnect delays.
	Backoff Backoff
	// MaxRetries is how many reconnects in a row are tried before the state
	// becomes failed. Default 0: retry forever (a live stream should come
	// back as soon as the server does).
	MaxRetries int
	// StableAfter is how long a connection must stay live for the backoff
	// to start over from Backoff.Min. Default 10s.
	StableAfter time.Duration
	// Timeout bounds the whole setup: dial, TLS, handshake, connect,
	// createStream and publish up to the server's onStatus. Default 10s.
	Timeout time.Duration
	// TLS is the client TLS configuration for rtmps. Default: the system
	// roots, server name from the URL.
	TLS *tls.Config
	// QueueLen is the reader queue in frames. Default media.DefaultQueueLen.
	QueueLen int
	// Logger receives state changes (with the key redacted). Default: none.
	Logger *slog.Logger
	// OnState is called after every state change, on the pusher's goroutine.
	OnState func(Status)
	// Clock and Rand replace time and randomness in tests.
	Clock Clock
	Rand  func() float64

	dial func(ctx context.Context, t Target, s *Settings) (conn, error)
}

// conn is one RTMP publishing session; the gortmplib one in production, a
// fake in unit tests.
type conn interface {
	writeMetadata(meta map[string]any) error
	write(m message) error
	err() error
	Close() error
}

// Pusher sends one stream to one destination from its own goroutine. The
// stream's bounded Reader is its queue: a stuck server never slows ingest or
// other outputs; when the queue overflows the pusher skips to the next
// keyframe, and a failed write reconnects.
type Pusher struct {
	src    *media.Stream
	target Target
	s      Settings
	log    *slog.Logger

	mu     sync.Mutex
	status Status

	cancel context.CancelFunc
	first  *media.Reader
	done   chan struct{}
	once   sync.Once
}

// New makes a Pusher for src (which must carry AAC audio, see stages.AAC,
// or Opus with Settings.Enhanced). It returns ErrBadURL for a bad destination.
func New(src *media.Stream, s Settings) (*Pusher, error) {
	t, err := ParseURL(s.URL)
	if err != nil {
		return nil, err
	}
	if s.Clock == nil {
		s.Clock = realClock{}
	}
	if s.Rand == nil {
		s.Rand = defaultRand
	}
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	if s.StableAfter <= 0 {
		s.StableAfter = 10 * time.Second
	}
	if s.dial == nil {
		s.dial = dialRTMP
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pusher{src: src, target: t, s: s, log: log.With("rtmp", t.Redacted()), done: make(chan struct{})}
	p.status = Status{URL: t.Redacted(), State: StateStarting, Since: s.Clock.Now()}
	return p, nil
}

// Start runs the pusher until Close or the end of the stream.
func (p *Pusher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	// Subscribe now, not after the connection is up: the queue holds the
	// frames (and the first keyframe) that arrive while connecting.
	p.first = p.subscribe()
	go func() {
		defer close(p.done)
		p.run(ctx)
	}()
}

// Close stops the pusher and waits for it. Safe to call more than once.
func (p *Pusher) Close() {
	p.once.Do(func() {
		if p.cancel == nil {
			close(p.done)
			return
		}
		p.cancel()
	})
	<-p.done
}

// Done is closed when the pusher has stopped for good (stopped or failed).
func (p *Pusher) Done() <-chan struct{} { return p.done }

// Status returns the current state.
func (p *Pusher) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

func (p *Pusher) set(st State, err error, edit func(*Status)) {
	p.mu.Lock()
	changed := p.status.State != st
	if changed {
		p.status.State, p.status.Since = st, p.s.Clock.Now()
	}
	if err != nil {
		p.status.LastError = err.Error()
	}
	if edit != nil {
		edit(&p.status)
	}
	s := p.status
	p.mu.Unlock()
	if !changed {
		return
	}
	if err != nil {
		p.log.Warn("rtmp output "+st.String(), "err", err)
	} else {
		p.log.Info("rtmp output " + st.String())
	}
	if p.s.OnState != nil {
		p.s.OnState(s)
	}
}

func (p *Pusher) run(ctx context.Context) {
	retry := 0
	for {
		liveAt, err := p.session(ctx)
		if ctx.Err() != nil || errors.Is(err, media.ErrStreamEnded) || p.srcEnded() {
			p.set(StateStopped, nil, nil)
			return
		}
		if !liveAt.IsZero() && p.s.Clock.Now().Sub(liveAt) >= p.s.StableAfter {
			retry = 0
		}
		if p.s.MaxRetries > 0 && retry >= p.s.MaxRetries {
			p.set(StateFailed, err, nil)
			return
		}
		p.set(StateRetrying, err, nil)
		select {
		case <-p.s.Clock.After(p.s.Backoff.Delay(retry, p.s.Rand())):
		case <-ctx.Done():
			p.set(StateStopped, nil, nil)
			return
		case <-p.src.Done():
			// Nothing left to send: a retrying output ends with its stream.
			p.set(StateStopped, nil, nil)
			return
		}
		retry++
	}
}

func (p *Pusher) srcEnded() bool {
	select {
	case <-p.src.Done():
		return true
	default:
		return false
	}
}

// session connects, publishes and sends until an error. It returns when the
// session went live (zero if never) and why it ended.
func (p *Pusher) subscribe() *media.Reader {
	return p.src.SubscribeSkipping("rtmp "+p.target.Redacted(), p.s.QueueLen)
}

func (p *Pusher) session(ctx context.Context) (liveAt time.Time, err error) {
	r := p.first
	p.first = nil
	if r == nil {
		r = p.subscribe()
	}
	defer func() { r.Close() }()
	c, err := p.s.dial(ctx, p.target, &p.s)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	p.set(p.Status().State, nil, func(s *Status) { s.Connects++ })

	video, audio := p.src.Track(media.KindVideo), p.src.Track(media.KindAudio)
	if audio != nil && audio.Codec != media.CodecAAC && !(p.s.Enhanced && audio.Codec == media.CodecOpus) {
		audio = nil // legacy RTMP carries AAC only; Opus needs the AAC stage or E-RTMP
	}
	if video != nil && video.Codec != media.CodecH264 {
		video = nil
	}
	m := newMuxer(video, audio)
	metaSent := false
	for {
		f, err := r.Read(ctx)
		if errors.Is(err, media.ErrReaderSkipped) {
			// The server is slower than the stream: skip to the next
			// keyframe on the same connection rather than send a half GOP.
			m.resync()
			p.set(p.Status().State, nil, func(s *Status) { s.Resyncs++ })
			continue
		}
		if err != nil {
			return liveAt, err
		}
		if err := c.err(); err != nil {
			return liveAt, fmt.Errorf("rtmp: connection: %w", err)
		}
		msgs, err := m.push(f)
		if err != nil {
			return liveAt, err
		}
		if len(msgs) > 0 && !metaSent {
			kbps := float64(p.s.AudioBitrate) / 1000
			if err := c.writeMetadata(metadata(m.vcfg, m.audioInfo(), kbps, m.frameRate())); err != nil {
				return liveAt, fmt.Errorf("rtmp: onMetaData: %w", err)
			}
			metaSent = true
		}
		for _, msg := range msgs {
			if err := c.write(msg); err != nil {
				return liveAt, fmt.Errorf("rtmp: write: %w", err)
			}
		}
		if len(msgs) > 0 {
			if liveAt.IsZero() {
				liveAt = p.s.Clock.Now()
				p.set(StateLive, nil, nil)
			}
			n := uint64(len(msgs))
			p.mu.Lock()
			p.status.Messages += n
			p.mu.Unlock()
		}
	}
}
