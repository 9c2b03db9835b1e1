// Package stages holds the upstream stages that read one media.Stream and
// write another. The first is the Opus→AAC stage that RTMP outputs need.
package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
)

// AAC transcodes a stream's Opus audio to AAC once per stream, and only while
// some consumer needs it.
//
// Where the AAC frames go: into a derived media.Stream. It carries the
// source's video frames as they came (the same bytes, the same *Config),
// written by the source's own Write (media.Stream.Forward), and AAC frames
// in place of Opus, written by the stage's goroutine, all on the source's
// timeline. Video therefore never waits on the transcode: a stage that
// stalls or fails costs the audio only. A consumer reads one Stream with
// the usual bounded-queue Reader, gets the usual "skip to the next
// keyframe" behaviour, and needs no second reader or merge of its own. The
// derived stream is not in the registry (its name is the source's); a
// keyframe request on it goes to the source's publisher.
//
// AAC frames reach the derived stream ~2 encoder frames (~43 ms) after the
// video frames of the same instant, plus up to 60 ms while the stage
// gathers Opus packets to transcode together (aacHold); consumers that
// interleave by DTS (the RTMP pusher) hold video that long.
//
// Channels: the AAC has the source's channel count, read from the first
// Opus packet (its TOC stereo flag) when it arrives, so the derived Track's
// Channels is 0 and the AudioSpecificConfig on every AAC frame (one *Config
// for the stream's life) is what says mono or stereo; transmux and the RTMP
// muxer read it from there. The encoder opens then too, on the stage's
// goroutine: Acquire itself opens no codec.
type AAC struct {
	settings codec.AACSettings
	log      *slog.Logger

	mu      sync.Mutex
	running map[*media.Stream]*aacStage

	errors atomic.Uint64 // Opus packets the codec failed on, all streams
}

// newOpusToAAC opens a transcoder; tests replace it to make one fail.
var newOpusToAAC = codec.NewOpusToAAC

// Errors counts the Opus packets that no transcode could turn into AAC
// (each is an audio gap of 20 ms or so; video is not held for them), in
// every stream since start.
func (a *AAC) Errors() uint64 { return a.errors.Load() }

// NewAAC makes the stage registry; s configures every transcode.
func NewAAC(s codec.AACSettings, log *slog.Logger) *AAC {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AAC{settings: s, log: log, running: make(map[*media.Stream]*aacStage)}
}

// aacHold is how much Opus audio (48 kHz ticks) the stage queues before it
// runs the codec on all of it: 60 ms, three packets per run. Woken for each
// 20 ms packet, the stage ran the decoder and encoder cold (their tables and
// state evicted by whatever ran in between) at ~2× the CPU time the same
// calls take in a tight loop; run three packets at a time, the stage costs
// a third less (docs/BENCHMARKS.md, "Batching"). The price is latency: AAC
// reaches the derived stream up to 60 ms later (20 ms later on average).
// 0 runs the codec on each packet as it comes. A variable for benchmarks.
var aacHold int64 = 60 * codec.AACSampleRate / 1000

// aacLockThread pins the stage's goroutine to one OS thread: measured and
// rejected (dearer, and a thread per stream), kept for the benchmark.
var aacLockThread bool

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
	for i, t := range src.Tracks {
		c := *t
		if t.Kind == media.KindAudio && t.Codec == media.CodecOpus && opus == nil {
			// Channels stays 0: the transcode follows the source's first
			// packet, which has not arrived yet. The AudioSpecificConfig on
			// every AAC frame says what was chosen (transmux and the RTMP
			// muxer read it from there).
			c = media.Track{Kind: media.KindAudio, Codec: media.CodecAAC, ClockRate: codec.AACSampleRate}
			opus = t
		}
		tracks[i] = &c
	}
	if opus != nil {
		// The encoder opens on the stage's goroutine at the first packet;
		// what can fail before that is said here, to the caller.
		if !codec.Available {
			return nil, codec.ErrNoCodecs
		}
		if b := a.settings.Bitrate; b != 0 && (b < 16000 || b > 512000) {
			return nil, fmt.Errorf("%w: AAC bitrate %d is out of range 16k-512k", codec.ErrBadSettings, b)
		}
	}
	derived := media.NewStream(src.Name, tracks, src.RequestKeyframe)
	derived.Started = src.Started // recordings are named by the publish time
	ctx, cancel := context.WithCancel(context.Background())
	st := &aacStage{derived: derived, cancel: cancel, done: make(chan struct{})}
	r := &aacRun{src: src, derived: derived, opus: opus, settings: a.settings, log: a.log.With("stream", src.Name), hold: aacHold, errors: &a.errors}
	lock := aacLockThread
	if opus != nil {
		r.aacTrack = tracks[opus.ID]
	}
	// Subscribed and forwarding before returning, so no frame written
	// after Acquire is missed. Video (every track but the Opus one) goes
	// to the derived stream from the publisher's Write itself: it never
	// waits on this stage's goroutine, so a transcode that stalls or fails
	// costs audio only. The stage reads the source for its Opus (and for
	// the video's times, to flush what it holds at a keyframe).
	r.reader = src.SubscribeSkipping("aac-stage", 0)
	r.stopForward = src.Forward(derived, func(t *media.Track) bool { return t != opus })
	go func() {
		defer close(st.done)
		if lock {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
		}
		r.run(ctx)
	}()
	return st, nil
}

type aacRun struct {
	src, derived *media.Stream
	opus         *media.Track // the source's Opus track (nil: none)
	aacTrack     *media.Track // its place in the derived stream
	settings     codec.AACSettings
	tc           codec.AudioTranscoder // nil until the first Opus packet
	failed       bool                  // the encoder could not open: audio is dropped
	cfg          *media.Config
	log          *slog.Logger
	reader       *media.Reader
	lastPTS      int64
	wrote        bool
	disc         bool           // mark the next AAC frame Discontinuity
	hold         int64          // aacHold when the stage started
	pending      []pendingOpus  // Opus packets held for the next codec run
	stopForward  func()         // ends the video's forwarding to derived
	errors       *atomic.Uint64 // the stage's count of packets that failed
	failing      int            // packets failed in a row (logged at the first)
	// refTime and refTS are the wall time and 48 kHz timestamp of the
	// last Opus packet given to the codec: an AAC frame's Time is placed
	// from them by its own PTS (see write).
	refTime time.Time
	refTS   int64
}

// transcode runs the codec on one packet. A failure costs that packet's
// audio only: it is counted, logged once per run of failures (and when it
// ends), and the stream goes on; video never waits for it.
func (r *aacRun) transcode(f *media.Frame, ts int64) {
	pkts, err := r.tc.Transcode(f.Data, ts)
	if err != nil {
		r.errors.Add(1)
		if r.failing++; r.failing == 1 {
			r.log.Warn("opus→aac: packets are failing; their audio is a gap, video goes on", "err", err)
		}
		return
	}
	if r.failing > 0 {
		r.log.Info("opus→aac: transcoding again", "failed_packets", r.failing)
		r.failing = 0
	}
	if !f.Time.IsZero() {
		r.refTime, r.refTS = f.Time, ts
	}
	r.write(pkts)
}

type pendingOpus struct {
	f  *media.Frame
	ts int64
}

// flushPending runs the codec on the held Opus packets. It is called when
// they span r.hold, at a video keyframe, when video runs 2×r.hold past them
// (the audio stopped), at a Discontinuity and at the end. An audio-only
// stream whose audio stops keeps its last packets until it resumes or ends:
// no part or segment can close before more audio comes anyway.
func (r *aacRun) flushPending() {
	for i, p := range r.pending {
		r.transcode(p.f, p.ts)
		r.pending[i] = pendingOpus{}
	}
	r.pending = r.pending[:0]
}

// opusStereo reports the stereo flag of an Opus packet's TOC byte (RFC 6716
// 3.1: bit 2, "s"). Browsers send mono (s=0) unless the answer asks for
// stereo=1.
func opusStereo(pkt []byte) bool { return len(pkt) > 0 && pkt[0]&0x04 != 0 }

// open starts the transcode with the channel count of the source's first
// packet: a mono source gets a mono AAC encoder at codec.MonoBitrate (no
// L=R stereo pair to encode), a stereo source the configured bitrate. The
// choice holds for the whole stream, as the AudioSpecificConfig cannot
// change mid-stream without a discontinuity; a stereo packet in a stream
// that began mono is downmixed by the decoder, a mono packet in a stereo
// one is duplicated to both channels.
func (r *aacRun) open(first []byte) {
	s := r.settings
	if s.Bitrate == 0 {
		s.Bitrate = codec.DefaultAACBitrate
	}
	s.Channels = 2
	if !opusStereo(first) {
		s.Channels, s.Bitrate = 1, codec.MonoBitrate(s.Bitrate)
	}
	tc, err := newOpusToAAC(s)
	if err != nil {
		r.log.Error("opus→aac: the encoder did not open; the stream goes on without audio", "err", err)
		r.failed = true
		return
	}
	r.tc, r.settings = tc, s // kept for restart: the same ASC after a reconnect
	r.cfg = &media.Config{AudioSpecificConfig: tc.Format().Config}
	r.log.Debug("opus→aac", "channels", s.Channels, "bitrate", s.Bitrate)
}

// restart begins a new transcode at a Discontinuity (the publisher
// reconnected): the old one's last packets are written, and the new one
// starts at the resumed timestamps instead of filling the interruption with
// silence. It keeps the channel count and bitrate (and so the
// AudioSpecificConfig) the stream started with.
func (r *aacRun) restart() {
	pkts, _ := r.tc.Flush()
	r.write(pkts)
	tc, err := newOpusToAAC(r.settings)
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
	defer r.stopForward()
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
		case errors.Is(err, media.ErrReaderSkipped):
			// Transcoding fell behind the source: go on from the next
			// keyframe. The audio gap is filled with silence by the
			// transcoder; readers of the derived stream see video resume at
			// that keyframe.
			r.log.Warn("aac stage fell behind; skipped to the next keyframe")
			continue
		case errors.Is(err, media.ErrStreamEnded):
			if r.tc != nil {
				r.flushPending()
				pkts, _ := r.tc.Flush()
				r.write(pkts)
			}
			return
		default:
			return
		}
		if f.Track != r.opus {
			if len(r.pending) > 0 && f.Track.Kind == media.KindVideo && f.Track.ClockRate > 0 &&
				(f.Keyframe || f.DTS*codec.AACSampleRate/int64(f.Track.ClockRate)-r.pending[0].ts >= 2*r.hold) {
				// A keyframe may start a segment: its audio goes out now. And
				// if audio stopped coming (video went on), what is held goes out.
				r.flushPending()
			}
			// Video (and any other track) reached the derived stream
			// already, from the source's Write (Forward).
			continue
		}
		if r.tc == nil {
			if r.failed || len(f.Data) == 0 {
				continue
			}
			r.open(f.Data)
			if r.tc == nil {
				continue
			}
			r.disc = f.Discontinuity
		} else if f.Discontinuity {
			r.flushPending()
			r.restart()
		}
		ts := f.DTS
		if f.Track.ClockRate != codec.AACSampleRate {
			ts = ts * codec.AACSampleRate / int64(f.Track.ClockRate)
		}
		if r.hold > 0 {
			r.pending = append(r.pending, pendingOpus{f, ts})
			if ts+960-r.pending[0].ts >= r.hold {
				r.flushPending()
			}
			continue
		}
		r.transcode(f, ts)
	}
}

// write hands the codec's AAC frames to the derived stream. A frame's Time
// is where its PTS lies on the wall clock by the last Opus packet given to
// the codec, not that packet's own time: the codec's output lags its input
// (its delay and the hold), and an HLS playlist dates audio and video from
// these times, so both must follow the media timeline. With the Opus
// packet's time the audio was dated some 60 ms late, and hls.js, which
// places a live segment after a discontinuity by its date, put the audio
// where its samples were not and stopped loading it (a 3 s stall at a
// resolution change).
func (r *aacRun) write(pkts []codec.Packet) {
	for _, p := range pkts {
		if r.wrote && p.PTS <= r.lastPTS {
			continue // keep DTS monotonic across a resubscribe
		}
		r.wrote, r.lastPTS = true, p.PTS
		f := &media.Frame{Track: r.aacTrack, DTS: p.PTS, PTS: p.PTS, Keyframe: true, Config: r.cfg, Data: p.Data, Discontinuity: r.disc}
		r.disc = false
		if !r.refTime.IsZero() {
			f.Time = r.refTime.Add(time.Duration(p.PTS-r.refTS) * time.Second / codec.AACSampleRate)
		}
		r.derived.Write(f)
	}
}
