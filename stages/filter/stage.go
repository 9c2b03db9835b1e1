package filter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages"
	"github.com/whipcast/whipcast/stages/codec"
)

// Suffix is appended to a source stream's name to name its filtered stream.
const Suffix = "/filtered"

// Publisher is the part of media.Registry the stages need.
type Publisher interface {
	Publish(name string, tracks []*media.Track, onKeyframeRequest func()) (*media.Stream, error)
	Unpublish(s *media.Stream)
}

// Settings configures Stages. The zero value works.
type Settings struct {
	// MaxStages limits how many filter stages run at once (each decodes and
	// encodes a picture stream: ~0.05 of a core for 320x240 at 30 fps with
	// the veryfast preset, measured by BenchmarkRotate320x240). Default 8.
	MaxStages int
	// Video configures the encoder; its Filter is set per stream.
	Video codec.VideoSettings
	// Logger; default discards.
	Logger *slog.Logger
}

// DefaultMaxStages is Settings.MaxStages when zero.
const DefaultMaxStages = 8

// Stages runs the filter stages of a gateway.
//
// Why a new stream rather than replacing the source's outputs: the filtered
// stream is a registry Stream like any published one, so HLS, DASH, RTMP,
// recordings, WHEP and the API apply to it by its own name and rules without
// a line of their own; the original stays available unchanged (a rotated
// phone picture for viewers, the raw one for the archive), a failing or
// overloaded filter never takes the source's outputs down with it, and
// whoever wants only the filtered version points players at
// {stream}/filtered. The cost is that the source keeps its own transmux.
type Stages struct {
	reg Publisher
	s   Settings
	log *slog.Logger

	mu      sync.Mutex
	running map[*media.Stream]*stage // by source
	derived map[*media.Stream]bool   // the streams we published
	pending map[string]bool          // names being published (OnPublish runs inside Publish)
	wg      sync.WaitGroup
}

// New makes the stage runner; filtered streams are published in reg.
func New(reg Publisher, s Settings) *Stages {
	if s.MaxStages == 0 {
		s.MaxStages = DefaultMaxStages
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stages{reg: reg, s: s, log: log, running: map[*media.Stream]*stage{}, derived: map[*media.Stream]bool{}, pending: map[string]bool{}}
}

// IsFiltered reports whether s is a stream published by a filter stage (so
// rules never filter a filtered stream again).
func (m *Stages) IsFiltered(s *media.Stream) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.derived[s] || m.pending[s.Name]
}

// Has reports whether a stage filters src.
func (m *Stages) Has(src *media.Stream) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.running[src]
	return ok
}

// Label returns the label src's running stage was started with.
func (m *Stages) Label(src *media.Stream) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.running[src]
	if !ok {
		return nil, false
	}
	return st.label, true
}

// MaxStages is Settings.MaxStages with its default applied.
func (m *Stages) MaxStages() int { return m.s.MaxStages }

// Running returns how many stages run.
func (m *Stages) Running() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.running)
}

type stage struct {
	src    *media.Stream
	cancel context.CancelFunc
	done   chan struct{}
	label  any // the caller's description of the stage (StartLabeled)
}

// Start filters src with chain into a new stream src.Name+Suffix, until src
// ends or Stop. It returns the filtered stream.
func (m *Stages) Start(src *media.Stream, chain Chain) (*media.Stream, error) {
	return m.StartLabeled(src, chain, nil)
}

// StartLabeled is Start with label kept beside the stage for its life
// (Label): what the caller wants to show of it (the chain as configured,
// who started it, when), so that the stage and its description never
// disagree.
func (m *Stages) StartLabeled(src *media.Stream, chain Chain, label any) (*media.Stream, error) {
	return m.start(src, nil, chain, label)
}

// StartFrom is StartLabeled on r's stream, read through r: a skipping
// reader the caller subscribed before the stream's first frame (a
// registry consumer's), so the stage starts at the stream's first keyframe
// however long its codecs take to open. The stage reads r and closes it
// when it ends; if StartFrom fails, r stays the caller's.
func (m *Stages) StartFrom(r *media.Reader, chain Chain, label any) (*media.Stream, error) {
	return m.start(r.Stream(), r, chain, label)
}

func (m *Stages) start(src *media.Stream, reader *media.Reader, chain Chain, label any) (*media.Stream, error) {
	graph := chain.VideoGraph()
	agraph := chain.AudioGraph()
	var at *media.Track
	if agraph != "" {
		if at = src.Track(media.KindAudio); at == nil || at.Codec != media.CodecOpus {
			at = nil // nothing to apply the audio filters to
		}
	}
	vt := src.Track(media.KindVideo)
	if vt == nil || vt.Codec != media.CodecH264 {
		return nil, ErrNoVideo
	}
	m.mu.Lock()
	if _, ok := m.running[src]; ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("filter: %s is already filtered", src.Name)
	}
	if len(m.running) >= m.s.MaxStages {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %d running", ErrTooManyStages, m.s.MaxStages)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &stage{src: src, done: make(chan struct{}), cancel: cancel, label: label}
	m.running[src] = st // reserve the slot
	m.mu.Unlock()
	fail := func(err error) (*media.Stream, error) {
		cancel()
		close(st.done)
		m.mu.Lock()
		delete(m.running, src)
		m.mu.Unlock()
		return nil, err
	}

	vs := m.s.Video
	vs.Filter = graph
	tc, err := codec.NewVideoTranscoder(vs)
	if err != nil {
		return fail(err)
	}
	var atc codec.AudioTranscoder
	if at != nil {
		if atc, err = codec.NewOpusFilter(agraph, 0); err != nil {
			tc.Close()
			return fail(err)
		}
	}
	tracks := make([]*media.Track, len(src.Tracks))
	for i, t := range src.Tracks {
		c := *t
		tracks[i] = &c
	}
	m.mu.Lock()
	m.pending[src.Name+Suffix] = true
	m.mu.Unlock()
	out, err := m.reg.Publish(src.Name+Suffix, tracks, tc.RequestKeyframe)
	m.mu.Lock()
	delete(m.pending, src.Name+Suffix)
	if err == nil {
		m.derived[out] = true
	}
	m.mu.Unlock()
	if err != nil {
		tc.Close()
		if atc != nil {
			atc.Close()
		}
		return fail(err)
	}
	out.Started = src.Started
	r := &run{src: src, out: out, video: vt, tc: tc, audio: at, atc: atc, log: m.log.With("stream", out.Name),
		vout: &stages.H264Out{Out: out, Track: out.Tracks[vt.ID]}}
	if reader == nil {
		reader = src.SubscribeSkipping("filter", 0)
	}
	r.reader = reader
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(st.done)
		r.run(ctx)
		tc.Close()
		if atc != nil {
			atc.Close()
		}
		m.reg.Unpublish(out)
		m.mu.Lock()
		delete(m.running, src)
		delete(m.derived, out)
		m.mu.Unlock()
	}()
	return out, nil
}

// Stop ends src's filter stage, if any, and waits for it.
func (m *Stages) Stop(src *media.Stream) {
	m.mu.Lock()
	st, ok := m.running[src]
	m.mu.Unlock()
	if ok {
		st.cancel()
		<-st.done
	}
}

// Close stops every stage and waits. Safe to call more than once.
func (m *Stages) Close() {
	m.mu.Lock()
	var sts []*stage
	for _, st := range m.running {
		sts = append(sts, st)
	}
	m.mu.Unlock()
	for _, st := range sts {
		st.cancel()
	}
	m.wg.Wait()
}

type run struct {
	src, out *media.Stream
	video    *media.Track
	tc       codec.VideoTranscoder
	audio    *media.Track          // nil: audio passes unchanged
	atc      codec.AudioTranscoder // the audio filters (gain)
	aWrote   bool
	aLast    int64
	aDisc    bool // mark the next filtered audio frame Discontinuity
	log      *slog.Logger
	reader   *media.Reader

	started  bool // a keyframe went into the decoder
	vout     *stages.H264Out
	lastTime time.Time
	annexB   []byte
}

func (r *run) run(ctx context.Context) {
	defer func() { r.reader.Close() }()
	for {
		f, err := r.reader.Read(ctx)
		switch {
		case err == nil:
		case errors.Is(err, media.ErrReaderSkipped):
			// Encoding fell behind: start again from the next keyframe.
			r.log.Warn("filter stage fell behind; skipped to the next keyframe")
			r.started = false
			continue
		case errors.Is(err, media.ErrStreamEnded):
			pkts, _ := r.tc.Flush()
			r.write(pkts)
			if r.atc != nil {
				apkts, _ := r.atc.Flush()
				r.writeAudio(apkts, time.Time{})
			}
			return
		default:
			return
		}
		if f.Track == r.audio {
			ts := f.DTS
			if f.Track.ClockRate != codec.AACSampleRate {
				ts = ts * codec.AACSampleRate / int64(f.Track.ClockRate)
			}
			if f.Discontinuity {
				r.aDisc = true
			}
			pkts, err := r.atc.Transcode(f.Data, ts)
			if err != nil {
				r.log.Warn("audio filter", "err", err)
				continue
			}
			r.writeAudio(pkts, f.Time)
			continue
		}
		if f.Track != r.video {
			c := *f
			c.Track = r.out.Tracks[f.Track.ID]
			r.out.Write(&c)
			continue
		}
		if f.Discontinuity {
			// The publisher reconnected: the filtered stream marks it too,
			// on a fresh IDR.
			r.vout.Discontinuity = true
			r.tc.RequestKeyframe()
		}
		if !r.started {
			if !f.Keyframe || f.Config == nil {
				continue
			}
			r.started = true
		}
		r.lastTime = f.Time
		au, err := stages.AnnexB(r.annexB, f)
		r.annexB = au
		if err != nil {
			r.log.Debug("bad access unit", "err", err)
			continue
		}
		pkts, err := r.tc.Transcode(au, f.PTS)
		if errors.Is(err, codec.ErrBadSettings) {
			// The chain does not fit this picture (a crop larger than the
			// input): it never will, so end the filtered stream once.
			r.log.Error("filters do not fit the stream; filtered stream ended", "err", err)
			return
		}
		if err != nil {
			r.log.Warn("filter", "err", err)
			continue
		}
		r.write(pkts)
	}
}

func (r *run) write(pkts []codec.VideoPacket) {
	for _, p := range pkts {
		if err := r.vout.Write(p, r.lastTime); err != nil {
			r.log.Debug("encoded access unit skipped", "err", err)
		}
	}
}

func (r *run) writeAudio(pkts []codec.Packet, t time.Time) {
	track := r.out.Tracks[r.audio.ID]
	for _, p := range pkts {
		ts := p.PTS * int64(track.ClockRate) / codec.AACSampleRate
		if r.aWrote && ts <= r.aLast {
			continue
		}
		r.aWrote, r.aLast = true, ts
		r.out.Write(&media.Frame{Track: track, DTS: ts, PTS: ts, Keyframe: true, Data: p.Data, Time: t, Discontinuity: r.aDisc})
		r.aDisc = false
	}
}
