// Package stages holds the upstream stages that read one media.Stream and
// write another. The first is the Opus→AAC stage that RTMP outputs need.
package stages

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
)

// AAC transcodes a stream's Opus audio to AAC once per stream, and only while
// some consumer needs it.
//
// Where the AAC frames go: into a derived media.Stream that the stage owns
// and writes alone. It carries the source's video frames as they came (the
// same bytes, the same *Config) and AAC frames in place of Opus, all on the
// source's timeline. A consumer therefore reads one Stream with the usual
// bounded-queue Reader, gets the usual "skip to the next keyframe" behaviour,
// and needs no second reader or merge of its own. The derived stream is not
// in the registry (its name is the source's); a keyframe request on it goes
// to the source's publisher.
//
// AAC frames reach the derived stream ~2 encoder frames (~43 ms) after the
// video frames of the same instant; consumers that interleave by DTS (the
// RTMP pusher) hold video that long.
type AAC struct {
	settings codec.AACSettings
	log      *slog.Logger

	mu      sync.Mutex
	running map[*media.Stream]*aacStage
}

// NewAAC makes the stage registry; s configures every transcode.
func NewAAC(s codec.AACSettings, log *slog.Logger) *AAC {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AAC{settings: s, log: log, running: make(map[*media.Stream]*aacStage)}
}

type aacStage struct {
	refs    int
	derived *media.Stream
	cancel  context.CancelFunc
	done    chan struct{}
}

// Acquire returns the derived stream (video + AAC) of src, starting the
// transcode on the first call for src. Every successful Acquire must be
// matched by one call of release; the last release stops the transcode and
// ends the derived stream. When src has no Opus track the derived stream
// carries its tracks unchanged.
func (a *AAC) Acquire(src *media.Stream) (derived *media.Stream, release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.running[src]
	if !ok {
		st, err = a.start(src)
		if err != nil {
			return nil, nil, err
		}
		a.running[src] = st
	}
	st.refs++
	var once sync.Once
	return st.derived, func() { once.Do(func() { a.release(src, st) }) }, nil
}

func (a *AAC) release(src *media.Stream, st *aacStage) {
	a.mu.Lock()
	st.refs--
	last := st.refs == 0
	if last && a.running[src] == st {
		delete(a.running, src)
	}
	a.mu.Unlock()
	if last {
		st.cancel()
		<-st.done
	}
}

// Running returns how many transcodes are running (for tests and metrics).
func (a *AAC) Running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.running)
}

func (a *AAC) start(src *media.Stream) (*aacStage, error) {
	tracks := make([]*media.Track, len(src.Tracks))
	var opus *media.Track
	var tc codec.AudioTranscoder
	for i, t := range src.Tracks {
		c := *t
		if t.Kind == media.KindAudio && t.Codec == media.CodecOpus && opus == nil {
			var err error
			if tc, err = codec.NewOpusToAAC(a.settings); err != nil {
				return nil, err
			}
			f := tc.Format()
			c = media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, ClockRate: uint32(f.SampleRate), Channels: f.Channels}
			opus = t
		}
		tracks[i] = &c
	}
	derived := media.NewStream(src.Name, tracks, src.RequestKeyframe)
	derived.Started = src.Started // recordings are named by the publish time
	ctx, cancel := context.WithCancel(context.Background())
	st := &aacStage{derived: derived, cancel: cancel, done: make(chan struct{})}
	r := &aacRun{src: src, derived: derived, tc: tc, opus: opus, log: a.log.With("stream", src.Name),
		newTC: func() (codec.AudioTranscoder, error) { return codec.NewOpusToAAC(a.settings) }}
	// Subscribed before returning, so no frame written after Acquire is missed.
	r.reader = src.Subscribe("aac-stage", 0)
	if tc != nil {
		r.cfg = &media.Config{AudioSpecificConfig: tc.Format().Config}
	}
	go func() {
		defer close(st.done)
		r.run(ctx)
	}()
	return st, nil
}

type aacRun struct {
	src, derived *media.Stream
	tc           codec.AudioTranscoder
	opus         *media.Track
	cfg          *media.Config
	log          *slog.Logger
	reader       *media.Reader
	lastPTS      int64
	wrote        bool
	newTC        func() (codec.AudioTranscoder, error)
	disc         bool // mark the next AAC frame Discontinuity
}

// restart begins a new transcode at a Discontinuity (the publisher
// reconnected): the old one's last packets are written, and the new one
// starts at the resumed timestamps instead of filling the interruption with
// silence (aresample async=1 would).
func (r *aacRun) restart() {
	pkts, _ := r.tc.Flush()
	r.write(pkts, nil)
	tc, err := r.newTC()
	if err != nil {
		r.log.Warn("opus→aac: new transcode after a reconnect failed; going on with the old one", "err", err)
	} else {
		r.tc.Close()
		r.tc = tc
	}
	r.disc = true
}

func (r *aacRun) run(ctx context.Context) {
	defer r.derived.Close()
	defer func() {
		if r.tc != nil {
			r.tc.Close()
		}
	}()
	reader := r.reader
	defer func() { reader.Close() }()
	for {
		f, err := reader.Read(ctx)
		switch {
		case err == nil:
		case errors.Is(err, media.ErrReaderTooSlow):
			// Transcoding fell behind the source: start again from now. The
			// audio gap is filled with silence by the transcoder; readers of
			// the derived stream see video resume at the next keyframe.
			r.log.Warn("aac stage fell behind; resubscribing", "err", err)
			reader.Close()
			reader = r.src.Subscribe("aac-stage", 0)
			continue
		case errors.Is(err, media.ErrStreamEnded):
			if r.tc != nil {
				pkts, _ := r.tc.Flush()
				r.write(pkts, nil)
			}
			return
		default:
			return
		}
		if f.Track != r.opus || r.tc == nil {
			c := *f
			c.Track = r.derived.Tracks[f.Track.ID]
			r.derived.Write(&c)
			continue
		}
		if f.Discontinuity {
			r.restart()
		}
		ts := f.DTS
		if f.Track.ClockRate != codec.AACSampleRate {
			ts = ts * codec.AACSampleRate / int64(f.Track.ClockRate)
		}
		pkts, err := r.tc.Transcode(f.Data, ts)
		if err != nil {
			r.log.Warn("opus→aac", "err", err)
			continue
		}
		r.write(pkts, f)
	}
}

func (r *aacRun) write(pkts []codec.Packet, src *media.Frame) {
	track := r.derived.Tracks[r.opus.ID]
	for _, p := range pkts {
		if r.wrote && p.PTS <= r.lastPTS {
			continue // keep DTS monotonic across a resubscribe
		}
		r.wrote, r.lastPTS = true, p.PTS
		f := &media.Frame{Track: track, DTS: p.PTS, PTS: p.PTS, Keyframe: true, Config: r.cfg, Data: p.Data, Discontinuity: r.disc}
		r.disc = false
		if src != nil {
			f.Time = src.Time
		}
		r.derived.Write(f)
	}
}
