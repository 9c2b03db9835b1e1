package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/internal/webhook"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/stages/motion"
	"github.com/whipcast/whipcast/web"
)

// motionDetectors runs the motion detectors, from `streams[].motion` rules
// and the API, at most one per stream. Each ends with its stream (or a
// Stop); a watcher goroutine per detector then closes its webhook sender
// (letting the last motion.stop go out) and forgets it. close stops them
// all and waits for the watchers.
type motionDetectors struct {
	g *Gateway
	// api serialises every start and stop (a rule's at publish, the
	// API's) and guards closed: two starts for one stream never race, and
	// none comes after close. mu guards m and the hooks only, briefly, so
	// status and metrics reads never wait for a detector to open.
	api    sync.Mutex
	closed bool
	mu     sync.Mutex
	m      map[*media.Stream]*motionRun // by stream
	wg     sync.WaitGroup               // the watchers
	// hooks are the webhook senders not yet closed, ended the sum of the
	// counters of closed ones: the metric stays monotonic across replaces
	// and stream ends.
	hooks map[*webhook.Sender]struct{}
	ended webhook.Stats
}

type motionRun struct {
	d       *motion.Detector
	hook    *webhook.Sender // nil without a webhook
	cfg     config.Motion
	source  string // "config" or "api"
	started time.Time
}

// startMotion starts a detector for every published stream whose rule asks
// for one, forwarding its events to the events bus (and the rule's
// webhook) as motion.start and motion.stop.
func (g *Gateway) startMotion() {
	g.motion = &motionDetectors{g: g, m: map[*media.Stream]*motionRun{}, hooks: map[*webhook.Sender]struct{}{}}
	g.Registry.OnPublish(func(s *media.Stream) {
		if g.Filters != nil && g.Filters.IsFiltered(s) {
			return
		}
		r, ok := g.cfg.Rule(s.Name)
		if !ok || r.Motion == nil {
			return
		}
		md := g.motion
		md.api.Lock()
		defer md.api.Unlock()
		if _, running := md.get(s); running || md.closed {
			return // the API started one first, or shutting down
		}
		if _, err := md.start(s, *r.Motion, "config"); err != nil {
			g.log.Error("motion detection not started", "stream", s.Name, "err", err)
		}
	})
}

// start runs a detector on s with cfg (validated). md.api is held.
func (md *motionDetectors) start(s *media.Stream, cfg config.Motion, source string) (*motionRun, error) {
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
	d, err := motion.Start(s, motion.Settings{
		Sensitivity: cfg.Sensitivity,
		Region:      motion.Region{X: cfg.Region.X, Y: cfg.Region.Y, Width: cfg.Region.Width, Height: cfg.Region.Height},
		StopAfter:   int64(cfg.StopAfter.Seconds() * codec.VideoClockRate),
		OnEvent: func(e motion.Event) {
			// On the detector's goroutine: both sends only queue.
			ev := web.Event{Type: "motion.stop", Time: time.Now().UTC(), Stream: name, Data: map[string]any{
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
	})
	if err != nil {
		if run.hook != nil {
			run.hook.Close()
		}
		return nil, err
	}
	run.d = d
	md.mu.Lock()
	md.m[s] = run
	if run.hook != nil {
		md.hooks[run.hook] = struct{}{}
	}
	md.mu.Unlock()
	md.wg.Add(1)
	go func() {
		defer md.wg.Done()
		<-d.Done()
		if run.hook != nil {
			run.hook.Close() // delivers the last motion.stop, within its timeout
		}
		md.mu.Lock()
		if md.m[s] == run {
			delete(md.m, s)
		}
		if run.hook != nil {
			st := run.hook.Stats()
			md.ended.Delivered += st.Delivered
			md.ended.Failed += st.Failed
			md.ended.Dropped += st.Dropped
			delete(md.hooks, run.hook)
		}
		md.mu.Unlock()
	}()
	return run, nil
}

func (md *motionDetectors) get(s *media.Stream) (*motionRun, bool) {
	md.mu.Lock()
	defer md.mu.Unlock()
	r, ok := md.m[s]
	if ok {
		select {
		case <-r.d.Done():
			return nil, false // ended; its watcher forgets it
		default:
		}
	}
	return r, ok
}

// webhookStats sums the webhook counters of every detector so far.
func (md *motionDetectors) webhookStats() webhook.Stats {
	md.mu.Lock()
	defer md.mu.Unlock()
	sum := md.ended
	for h := range md.hooks {
		st := h.Stats()
		sum.Delivered += st.Delivered
		sum.Failed += st.Failed
		sum.Dropped += st.Dropped
	}
	return sum
}

func (md *motionDetectors) close() {
	md.api.Lock()
	md.closed = true
	md.api.Unlock()
	md.mu.Lock()
	ds := make([]*motion.Detector, 0, len(md.m))
	for _, r := range md.m {
		ds = append(ds, r.d)
	}
	md.mu.Unlock()
	for _, d := range ds {
		d.Close()
	}
	md.wg.Wait()
}

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
	md.api.Lock()
	defer md.api.Unlock()
	if md.closed {
		return web.MotionStatus{}, web.ErrStreamNotLive
	}
	if old, ok := md.get(s); ok {
		old.d.Close()
	}
	r, err := md.start(s, cfg, "api")
	if err != nil {
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
	md.api.Lock()
	defer md.api.Unlock()
	r, ok := md.get(s)
	if !ok {
		return fmt.Errorf("%w: no motion detection runs on stream %s", web.ErrNotRunning, stream)
	}
	r.d.Close()
	return nil
}
