package transmux

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/whipcast/whipcast/media"
)

// Consumer is told about each newly published stream and returns the Sink
// that receives that stream's CMAF output, or nil to skip the stream.
// It runs on the publisher's goroutine and must not block.
type Consumer func(s *media.Stream) Sink

// Source maps a published stream to the stream that is transmuxed in its
// place, e.g. the Opus→AAC stage's derived stream (video + AAC). release is
// called once when the transmuxer is done with it. A Source runs on the
// publisher's goroutine and must not block for long.
type Source func(published *media.Stream) (s *media.Stream, release func(), err error)

// Service runs one Transmuxer per published stream and hands its output to
// every Consumer (the HLS and DASH packagers, the recorder), so a stream is
// muxed once however many formats and outputs read it: they all share the
// same Init, Part and Segment values.
type Service struct {
	set Settings
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	consumers []Consumer
	source    Source
	closed    bool
}

// NewService makes a Service. logger may be nil.
func NewService(s Settings, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{set: s.withDefaults(), log: logger, ctx: ctx, cancel: cancel}
}

// Settings returns the effective settings (defaults filled in).
func (sv *Service) Settings() Settings { return sv.set }

// AddConsumer registers c for every stream published from now on.
func (sv *Service) AddConsumer(c Consumer) {
	sv.mu.Lock()
	sv.consumers = append(sv.consumers, c)
	sv.mu.Unlock()
}

// SetSource makes every stream published from now on go through src before
// it is transmuxed; consumers then see the stream src returns. When src
// fails for a stream, that stream is transmuxed as published and the error
// is logged. Default: the published stream itself.
func (sv *Service) SetSource(src Source) {
	sv.mu.Lock()
	sv.source = src
	sv.mu.Unlock()
}

// Attach transmuxes every stream published on reg from now on.
func (sv *Service) Attach(reg *media.Registry) {
	reg.OnPublish(sv.publish)
}

// publish runs on the publisher's goroutine: the reader is subscribed here so
// no frame is missed, and the transmuxer runs on its own goroutine.
func (sv *Service) publish(s *media.Stream) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.closed {
		return
	}
	release := func() {}
	if sv.source != nil {
		d, rel, err := sv.source(s)
		if err != nil {
			sv.log.Warn("transmux: stream source failed; packaging the stream as published", "stream", s.Name, "err", err)
		} else {
			s, release = d, rel
		}
	}
	var sinks multiSink
	for _, c := range sv.consumers {
		if sink := c(s); sink != nil {
			sinks = append(sinks, sink)
		}
	}
	if len(sinks) == 0 {
		release()
		return
	}
	var sink Sink = sinks
	if len(sinks) == 1 {
		sink = sinks[0]
	}
	tm, err := New(sv.set, s.Tracks, sink)
	if err != nil {
		sv.log.Warn("transmux: stream not packaged", "stream", s.Name, "err", err)
		for _, k := range sinks {
			k.OnEnd(err)
		}
		release()
		return
	}
	r := s.Subscribe("transmux", sv.set.ReaderQueue)
	sv.wg.Add(1)
	go func() {
		defer sv.wg.Done()
		err := tm.Run(sv.ctx, r)
		r.Close()
		release()
		if err != nil && !errors.Is(err, context.Canceled) {
			sv.log.Warn("transmux: stream stopped", "stream", s.Name, "err", err)
		}
		if n := tm.Resyncs(); n > 0 {
			sv.log.Warn("transmux: fell behind the publisher and resynced at a keyframe", "stream", s.Name, "times", n)
		}
	}()
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

// multiSink hands every event to each sink in order.
type multiSink []Sink

func (m multiSink) OnInit(in *Init) {
	for _, s := range m {
		s.OnInit(in)
	}
}

func (m multiSink) OnPart(p *Part) {
	for _, s := range m {
		s.OnPart(p)
	}
}

func (m multiSink) OnSegment(seg *Segment) {
	for _, s := range m {
		s.OnSegment(seg)
	}
}

func (m multiSink) OnEnd(err error) {
	for _, s := range m {
		s.OnEnd(err)
	}
}
