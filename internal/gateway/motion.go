package gateway

import (
	"sync"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/stages/motion"
	"github.com/whipcast/whipcast/web"
)

// motionDetectors runs the `streams[].motion` detectors; each ends with its
// stream, and close stops any left at shutdown.
type motionDetectors struct {
	mu sync.Mutex
	m  map[*motion.Detector]struct{}
}

// startMotion starts a detector for every published stream whose rule asks
// for one, forwarding its events to the events bus as motion.start and
// motion.stop.
func (g *Gateway) startMotion() {
	g.motion = &motionDetectors{m: map[*motion.Detector]struct{}{}}
	g.Registry.OnPublish(func(s *media.Stream) {
		if g.Filters != nil && g.Filters.IsFiltered(s) {
			return
		}
		r, ok := g.cfg.Rule(s.Name)
		if !ok || r.Motion == nil {
			return
		}
		name := s.Name
		d, err := motion.Start(s, motion.Settings{
			Sensitivity: r.Motion.Sensitivity,
			Region:      motion.Region{X: r.Motion.Region.X, Y: r.Motion.Region.Y, Width: r.Motion.Region.Width, Height: r.Motion.Region.Height},
			StopAfter:   int64(r.Motion.StopAfter.Seconds() * codec.VideoClockRate),
			OnEvent: func(e motion.Event) {
				typ := "motion.stop"
				if e.Start {
					typ = "motion.start"
				}
				g.events.Publish(web.Event{Type: typ, Stream: name, Data: map[string]any{
					"score": e.Score, "stream_time": float64(e.PTS) / codec.VideoClockRate}})
			},
			Logger: g.log.With("component", "motion", "stream", name),
		})
		if err != nil {
			g.log.Error("motion detection not started", "stream", name, "err", err)
			return
		}
		g.motion.mu.Lock()
		g.motion.m[d] = struct{}{}
		g.motion.mu.Unlock()
		go func() {
			<-d.Done()
			g.motion.mu.Lock()
			delete(g.motion.m, d)
			g.motion.mu.Unlock()
		}()
	})
}

func (m *motionDetectors) close() {
	m.mu.Lock()
	ds := make([]*motion.Detector, 0, len(m.m))
	for d := range m.m {
		ds = append(ds, d)
	}
	m.mu.Unlock()
	for _, d := range ds {
		d.Close()
	}
}
