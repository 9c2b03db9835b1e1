package transmux

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/media"
)

// Consumer is told about each stream whose packaging starts (demand.go) and
// returns the Sink that receives that run's CMAF output, or nil to skip the
// stream. A stream packaged, stopped for want of demand and packaged again
// calls it again: each run has fresh sinks. It runs on the goroutine that
// starts the run (the publisher's, or the stream's demand goroutine) and
// must not block, nor call back into the Service.
type Consumer func(s *media.Stream) Sink

// Source maps a published stream to the stream that is transmuxed in its
// place, e.g. the Opus→AAC stage's derived stream (video + AAC). release is
// called once when the transmuxer is done with it. A Source runs when a
// stream's packaging starts and must not block for long.
type Source func(published *media.Stream) (s *media.Stream, release func(), err error)

// DefaultIdle is the default of Settings.Idle.
const DefaultIdle = 30 * time.Second

// Service runs one Transmuxer per published stream while the stream has
// demand, and hands its output to every Consumer (the HLS and DASH
// packagers, the recorder, the origin), so a stream is muxed once however
// many formats and outputs read it: they all share the same Init, Part and
// Segment values.
//
// Demand is counted per stream (demand.go): a Pin rule that accepts the
// stream (a recording or origin rule: from publish to end), an Acquire (an
// API recording), and players (Watch: HLS and DASH requests, a lease that
// lapses Idle after the last request). With no demand nothing runs for the
// stream, not even its Source (the Opus→AAC transcode); the last demand
// going stops the run, and its sinks get OnEnd(ErrIdle).
type Service struct {
	set  Settings
	idle time.Duration
	base time.Time // origin of clock
	log  *slog.Logger

	sinkPanics atomic.Uint64 // sinks cut off by a panic (multiSink)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per stream's demand goroutine

	mu        sync.Mutex
	consumers []Consumer
	pins      []func(*media.Stream) bool
	source    Source
	streams   map[string]*demand // by name: published, not yet finished
	reg       *media.Registry    // Attach's: Watch awaits a stream being published
	awaiting  map[string]int     // players waiting in Watch for a stream's first frame, by name
	running   int                // streams with a transmuxer running
	closed    bool
}

// NewService makes a Service. logger may be nil.
func NewService(s Settings, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	idle := s.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	return &Service{set: s.withDefaults(), idle: idle, base: time.Now(), log: logger, ctx: ctx, cancel: cancel,
		streams: make(map[string]*demand), awaiting: make(map[string]int)}
}

// Settings returns the effective settings (defaults filled in).
func (sv *Service) Settings() Settings {
	s := sv.set
	s.Idle = sv.idle
	return s
}

// AddConsumer registers c for every run started from now on. A consumer
// is passive: it creates no demand (see Pin, Acquire, Watch).
func (sv *Service) AddConsumer(c Consumer) {
	sv.mu.Lock()
	sv.consumers = append(sv.consumers, c)
	sv.mu.Unlock()
}

// Pin makes every stream published from now on that want accepts packaged
// from its publish to its end (a recording rule, an origin rule). want runs
// on the publisher's goroutine and must not block.
func (sv *Service) Pin(want func(*media.Stream) bool) {
	sv.mu.Lock()
	sv.pins = append(sv.pins, want)
	sv.mu.Unlock()
}

// SetSource makes every run started from now on go through src before it
// is transmuxed; consumers then see the stream src returns. When src fails
// for a stream, that stream is transmuxed as published and the error is
// logged. Default: the published stream itself.
func (sv *Service) SetSource(src Source) {
	sv.mu.Lock()
	sv.source = src
	sv.mu.Unlock()
}

// Attach tracks the demand of every stream published on reg from now on.
func (sv *Service) Attach(reg *media.Registry) {
	sv.mu.Lock()
	sv.reg = reg
	sv.mu.Unlock()
	reg.OnPublish(sv.publish)
}

// AwaitPublish bounds how long a player's request waits for a stream whose
// publisher has been answered and has not sent its first frame yet.
const AwaitPublish = 5 * time.Second

// Awaiting counts the player requests waiting for a publisher's first
// frame (Watch of a stream that is claimed and not yet announced).
func (sv *Service) Awaiting() int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	n := 0
	for _, c := range sv.awaiting {
		n += c
	}
	return n
}

// Running counts the streams being packaged now (for metrics and tests).
func (sv *Service) Running() int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.running
}

// publish runs on the publisher's goroutine, before the publisher writes
// its first frame (media.Registry.Announce). The run of a pinned stream
// starts here, so no frame is missed; so does the run of a stream that
// players are waiting for (they asked while the publisher connected, Watch),
// under a player lease that starts now. The stream's demand goroutine owns
// everything from then on.
func (sv *Service) publish(s *media.Stream) {
	sv.mu.Lock()
	if sv.closed {
		sv.mu.Unlock()
		return
	}
	pinned := false
	for _, want := range sv.pins {
		pinned = pinned || want(s)
	}
	watched := sv.awaiting[s.Name] > 0
	d := newDemand(sv, s)
	sv.streams[s.Name] = d
	sv.wg.Add(1)
	sv.mu.Unlock()
	var cur *run
	if pinned || watched {
		if pinned {
			d.pins.Store(1)
		}
		var err error
		if cur, err = d.start(); err != nil {
			sv.log.Warn("transmux: stream not packaged", "stream", s.Name, "err", err)
			watched = false
		}
	}
	if watched {
		d.touched.Store(sv.clock())
		d.playing.Store(true)
	}
	go d.supervise(cur, watched)
}

// lookup returns the demand of a stream that is published and not finished.
func (sv *Service) lookup(name string) *demand {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.streams[name]
}

// forget drops d from the index once its goroutine is done.
func (sv *Service) forget(d *demand) {
	sv.mu.Lock()
	if sv.streams[d.s.Name] == d {
		delete(sv.streams, d.s.Name)
	}
	sv.mu.Unlock()
}

func (sv *Service) countRunning(delta int) {
	sv.mu.Lock()
	sv.running += delta
	sv.mu.Unlock()
}

// snapshot returns what a new run is made of.
func (sv *Service) snapshot() (Source, []Consumer) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.source, slices.Clone(sv.consumers)
}

// Close stops every transmuxer (each sink gets OnEnd) and waits for them.
// Safe to call more than once.
func (sv *Service) Close() {
	sv.mu.Lock()
	sv.closed = true
	sv.mu.Unlock()
	sv.cancel()
	sv.wg.Wait()
}

// multiSink hands every event to each sink in order, on the transmuxer's
// goroutine: isolation from a slow sink is each sink's own (Sink: none may
// block), so the in-memory packagers see a part the moment it is cut. A
// sink that panics is cut off alone: logged with its stack, counted
// (Service.SinkPanics), never called again, while the others go on.
type multiSink struct {
	sinks  []Sink
	failed []bool
	stream string
	sv     *Service
}

func newMultiSink(sv *Service, stream string, sinks []Sink) *multiSink {
	return &multiSink{sinks: sinks, failed: make([]bool, len(sinks)), stream: stream, sv: sv}
}

// each calls fn on every sink not cut off, recovering a panic of one.
func (m *multiSink) each(event string, fn func(Sink)) {
	for i, s := range m.sinks {
		if m.failed[i] {
			continue
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					m.failed[i] = true
					m.sv.sinkPanics.Add(1)
					m.sv.log.Error("transmux: a sink panicked and is cut off; the stream's other outputs go on",
						"stream", m.stream, "sink", fmt.Sprintf("%T", s), "event", event, "panic", p, "stack", string(debug.Stack()))
				}
			}()
			fn(s)
		}()
	}
}

func (m *multiSink) OnInit(in *Init)        { m.each("init", func(s Sink) { s.OnInit(in) }) }
func (m *multiSink) OnPart(p *Part)         { m.each("part", func(s Sink) { s.OnPart(p) }) }
func (m *multiSink) OnSegment(seg *Segment) { m.each("segment", func(s Sink) { s.OnSegment(seg) }) }
func (m *multiSink) OnEnd(err error)        { m.each("end", func(s Sink) { s.OnEnd(err) }) }

// SinkPanics is how many sinks panicked and were cut off, since the
// Service was made.
func (sv *Service) SinkPanics() uint64 { return sv.sinkPanics.Load() }
