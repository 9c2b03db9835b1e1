package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/events"
	"github.com/whipcast/whipcast/internal/webhook"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/stages/motion"
	"github.com/whipcast/whipcast/web"
)

// motionDetectors is the motion API and the `streams[].motion` rules over
// a motion.Manager, which owns the detectors (at most one per stream, one
// map, one lock). What the API shows of a detector is its label there (a
// *motionRun); a detector's webhook sender is closed by the Manager's
// watcher once the detector stops, letting the last motion.stop go out.
type motionDetectors struct {
	g   *Gateway
	mgr *motion.Manager
	// ended sums the counters of the webhook senders already closed, so
	// the metric stays monotonic across replaces and stream ends.
	mu    sync.Mutex
	ended webhook.Stats
}

type motionRun struct {
	hook    *webhook.Sender // nil without a webhook
	cfg     config.Motion
	source  string // "config" or "api"
	started time.Time
	done    <-chan struct{} // closed when the detector has stopped
}

// startMotion starts a detector for every published stream whose rule asks
// for one, forwarding its events to the events bus (and the rule's
// webhook) as motion.start and motion.stop. The start (which opens the
// H.264 decoder) is a registry consumer: on a goroutine of its own, not the
// publisher's, reading through a reader subscribed before the stream's
// first frame, so the detector still sees the first GOP. The detector it
// starts belongs to the motion.Manager; this run lasts as long as it (an
// API replace or stop ends it too).
func (g *Gateway) startMotion() {
	g.motion = &motionDetectors{g: g, mgr: motion.NewManager()}
	wants := func(s *media.Stream) bool {
		if g.Filters != nil && g.Filters.IsFiltered(s) {
			return false
		}
		r, ok := g.cfg.Rule(s.Name)
		return ok && r.Motion != nil
	}
	g.Registry.ConsumeReaderWhen("motion", media.DefaultQueueLen, wants, func(ctx context.Context, rd *media.Reader) error {
		r, _ := g.cfg.Rule(rd.Stream().Name)
		// A stream whose detector the API started first keeps it.
		run, err := g.motion.start(rd.Stream(), rd, *r.Motion, "config", false)
		switch {
		case errors.Is(err, motion.ErrClosed):
			return nil // the gateway is closing
		case err != nil:
			return fmt.Errorf("motion detection not started: %w", err)
		case run == nil:
			return nil
		}
		select {
		case <-run.done:
		case <-ctx.Done():
		}
		return nil
	})
}

// start runs a detector on s with cfg (validated), replacing the one that
// runs when replace is set; without replace, a stream that has one keeps
// it and start returns (nil, nil). The detector reads rd (a reader of s
// subscribed by the caller, which a started detector takes), or
// subscribes its own when rd is nil.
func (md *motionDetectors) start(s *media.Stream, rd *media.Reader, cfg config.Motion, source string, replace bool) (*motionRun, error) {
	g := md.g
	if vt := s.Track(media.KindVideo); vt == nil || vt.Codec != media.CodecH264 {
		return nil, fmt.Errorf("%w: the stream has no H.264 video to watch", web.ErrUnfit)
	}
	run := &motionRun{cfg: cfg, source: source, started: time.Now().UTC()}
	name := s.Name
	log := g.log.With("component", "motion", "stream", name)
	if cfg.Webhook != "" {
		h, err := webhook.New(webhook.Settings{URL: cfg.Webhook, Secret: cfg.WebhookSecret, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("%w: webhook: %w", web.ErrBadSpec, err)
		}
		run.hook = h
	}
	set := motion.Settings{
		Sensitivity: cfg.Sensitivity,
		Region:      motion.Region{X: cfg.Region.X, Y: cfg.Region.Y, Width: cfg.Region.Width, Height: cfg.Region.Height},
		StopAfter:   int64(cfg.StopAfter.Seconds() * codec.VideoClockRate),
		OnEvent: func(e motion.Event) {
			// On the detector's goroutine: both sends only queue.
			ev := events.Event{Type: "motion.stop", Time: time.Now().UTC(), Stream: name, Data: map[string]any{
				"score": e.Score, "stream_time": float64(e.PTS) / codec.VideoClockRate}}
			if e.Start {
				ev.Type = "motion.start"
			}
			g.events.Publish(ev)
			if run.hook != nil {
				if b, err := json.Marshal(ev); err == nil {
					run.hook.Send(ev.Type, b)
				}
			}
		},
		Logger: log,
	}
	var d *motion.Detector
	var err error
	if rd != nil {
		d, err = md.mgr.StartFrom(rd, set, run, replace, func() { md.closeHook(run) })
	} else {
		d, err = md.mgr.Start(s, set, run, replace, func() { md.closeHook(run) })
	}
	if err != nil || d == nil {
		if run.hook != nil {
			run.hook.Close()
		}
		return nil, err
	}
	run.done = d.Done()
	return run, nil
}

// closeHook closes a stopped detector's webhook sender (delivering its last
// motion.stop within its timeout) and keeps its counters.
func (md *motionDetectors) closeHook(run *motionRun) {
	if run.hook == nil {
		return
	}
	run.hook.Close()
	st := run.hook.Stats()
	md.mu.Lock()
	md.ended.Delivered += st.Delivered
	md.ended.Failed += st.Failed
	md.ended.Dropped += st.Dropped
	md.mu.Unlock()
}

func (md *motionDetectors) get(s *media.Stream) (*motionRun, bool) {
	l, ok := md.mgr.Label(s)
	r, isRun := l.(*motionRun)
	return r, ok && isRun
}

// webhookStats sums the webhook counters of every detector so far.
func (md *motionDetectors) webhookStats() webhook.Stats {
	md.mu.Lock()
	sum := md.ended
	md.mu.Unlock()
	for _, l := range md.mgr.Labels() {
		if r, ok := l.(*motionRun); ok && r.hook != nil {
			st := r.hook.Stats()
			sum.Delivered += st.Delivered
			sum.Failed += st.Failed
			sum.Dropped += st.Dropped
		}
	}
	return sum
}

func (md *motionDetectors) close() { md.mgr.Close() }

func (md *motionDetectors) status(s *media.Stream, r *motionRun) web.MotionStatus {
	c := r.cfg
	st := web.MotionStatus{Stream: s.Name, Sensitivity: c.Sensitivity, StopAfter: c.StopAfter.String(),
		Region: web.MotionRegion{X: c.Region.X, Y: c.Region.Y, Width: c.Region.Width, Height: c.Region.Height},
		Source: r.source, Started: r.started}
	// The defaults motion.Start applies, so GET says what runs.
	if st.Sensitivity == 0 {
		st.Sensitivity = 0.5
	}
	if c.StopAfter == 0 {
		st.StopAfter = "2s"
	}
	if c.Region.Width == 0 || c.Region.Height == 0 {
		st.Region = web.MotionRegion{Width: 1, Height: 1}
	}
	if r.hook != nil {
		hs := r.hook.Stats()
		st.Webhook = &web.WebhookStatus{URL: redactURL(c.Webhook), Signed: c.WebhookSecret != "",
			Delivered: hs.Delivered, Failed: hs.Failed, Dropped: hs.Dropped}
	}
	return st
}

// redactURL drops credentials and replaces the query (either may hold a
// token) with ****.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.Fragment = nil, ""
	if u.RawQuery != "" {
		u.RawQuery = "****"
	}
	return u.String()
}

// Motion implements web.StreamMotion.
func (md *motionDetectors) Motion(stream string) (web.MotionStatus, bool) {
	s, ok := md.g.Registry.Get(stream)
	if !ok {
		return web.MotionStatus{}, false
	}
	r, ok := md.get(s)
	if !ok {
		return web.MotionStatus{}, false
	}
	return md.status(s, r), true
}

// SetMotion implements web.StreamMotion: validate, stop a running detector,
// start the new one.
func (md *motionDetectors) SetMotion(stream string, body []byte) (web.MotionStatus, error) {
	s, ok := md.g.Registry.Get(stream)
	if !ok {
		return web.MotionStatus{}, web.ErrStreamNotLive
	}
	cfg, err := config.ParseMotion(body)
	if err != nil {
		return web.MotionStatus{}, fmt.Errorf("%w: %w", web.ErrBadSpec, err)
	}
	if vt := s.Track(media.KindVideo); vt == nil || vt.Codec != media.CodecH264 {
		return web.MotionStatus{}, fmt.Errorf("%w: the stream has no H.264 video to watch", web.ErrUnfit)
	}
	r, err := md.start(s, nil, cfg, "api", true)
	if err != nil {
		if errors.Is(err, motion.ErrClosed) {
			return web.MotionStatus{}, web.ErrStreamNotLive
		}
		if !errors.Is(err, web.ErrUnfit) && !errors.Is(err, web.ErrBadSpec) {
			md.g.log.Error("motion detection not started", "stream", stream, "err", err)
		}
		return web.MotionStatus{}, err
	}
	return md.status(s, r), nil
}

// StopMotion implements web.StreamMotion.
func (md *motionDetectors) StopMotion(stream string) error {
	s, ok := md.g.Registry.Get(stream)
	if !ok {
		return web.ErrStreamNotLive
	}
	if !md.mgr.Stop(s) {
		return fmt.Errorf("%w: no motion detection runs on stream %s", web.ErrNotRunning, stream)
	}
	return nil
}
