package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/whipcast/whipcast/events"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs"
	"github.com/whipcast/whipcast/outputs/origin"
	"github.com/whipcast/whipcast/outputs/recorder"
	"github.com/whipcast/whipcast/outputs/rtmp"
	"github.com/whipcast/whipcast/outputs/state"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/web"
)

// auth is the gateway's access policy from config auth.*.
func (g *Gateway) auth() *web.Auth {
	a := g.cfg.Auth
	return &web.Auth{Admin: a.AdminToken, Publish: a.PublishToken, Play: a.PlayToken, JWTSecret: a.JWTSecret}
}

// webHandlers makes the API, the metrics and the UI.
func (g *Gateway) webHandlers() web.Handlers {
	auth := g.auth()
	opt := web.APIOptions{Streams: g.Registry, Events: g.events, Auth: auth, Logger: g.log.With("component", "api")}
	if g.rooms != nil {
		opt.Rooms, opt.RoomMedia = g.rooms, g.ingest
		opt.Composites = compositeAPI{g}
	}
	if g.Restream != nil {
		opt.Outputs = restreamOutputs{g.Restream}
	}
	opt.Ingest = g.ingest.StreamStats
	opt.Limits = g.limitsState
	if codec.Available { // without codecs the routes answer 501
		opt.Filters, opt.Motion = g.filterChains, g.motion
	}
	mopt := web.MetricsOptions{Streams: g.Registry, Events: g.events}
	if g.rec != nil {
		opt.Recorder, opt.Store, opt.StorePrefix = g.rec.rec, g.rec.store, g.rec.prefix
		if g.rec.origin != nil {
			opt.Origin = g.rec.origin
		}
		rec, sp := g.rec.rec, g.rec.spool
		mopt.Recordings, mopt.Spool = rec.Sessions, sp.Status
	}
	metrics := web.NewMetrics(mopt)
	metrics.Registry().MustRegister(gatewayCollector{g: g, rec: g.rec})
	g.cmaf.AddConsumer(newSegmentLag(metrics.Registry()).consumer)
	return web.Handlers{
		API:      web.NewAPI(opt),
		Metrics:  metrics,
		PlayAuth: auth.PlayAuth(),
		UI:       true,
	}
}

// watchStreams turns publishes, interruptions, resumes and ends into events.
// A stream whose publisher dropped is interrupted, not ended: stream.ended
// comes when the reconnect window has passed (Stream.Done).
func (g *Gateway) watchStreams() {
	g.Registry.OnStateChange(func(s *media.Stream, st media.State) {
		_, _, reason := s.State()
		switch st {
		case media.StateInterrupted:
			g.events.Publish(events.Event{Type: "stream.interrupted", Stream: s.Name, Data: map[string]any{
				"reason": reason, "reconnect_window_seconds": g.Registry.ReconnectWindow().Seconds()}})
		case media.StateLive:
			g.events.Publish(events.Event{Type: "stream.resumed", Stream: s.Name, Data: map[string]any{
				"resumes": s.Resumes(), "gap_seconds": s.LastGap().Seconds()}})
		}
	})
	g.Registry.OnPublish(func(s *media.Stream) {
		g.events.Publish(events.Event{Type: "stream.started", Stream: s.Name, Data: map[string]any{"tracks": trackNames(s)}})
	})
	// The registry owns the wait for the end (and joins it in Close, before
	// the bus closes), so stream.ended never goes out on a closed bus.
	g.Registry.Consume("events", func(ctx context.Context, s *media.Stream) error {
		<-ctx.Done() // the stream ended: Unpublish, expiry or Registry.Close
		frames, bytes := s.Stats()
		g.events.Publish(events.Event{Type: "stream.ended", Stream: s.Name, Data: map[string]any{
			"frames_in": frames, "bytes_in": bytes}})
		return nil
	})
	g.Registry.OnConsumerError(func(kind string, s *media.Stream, err error) {
		g.log.Error("stream consumer failed; the stream goes on without it", "consumer", kind, "stream", s.Name, "err", err)
	})
}

func trackNames(s *media.Stream) []string {
	out := make([]string, len(s.Tracks))
	for i, t := range s.Tracks {
		out[i] = t.Codec.String()
	}
	return out
}

// recordingEvent forwards the recorder's events.
func (g *Gateway) recordingEvent(e recorder.Event) {
	ev := events.Event{Stream: e.Stream, Data: map[string]any{"key": e.Key}}
	switch e.Kind {
	case recorder.EventStarted:
		ev.Type = "recording.started"
	case recorder.EventFinished:
		ev.Type = "recording.finished"
	case recorder.EventFailed:
		ev.Type = "recording.failed"
		ev.Data["error"] = e.Err.Error()
	case recorder.EventRetrying:
		// Storage does not keep up: segments are dropped until it does.
		ev.Type = "recording.retrying"
		ev.Data["state"] = state.Retrying.String()
		ev.Data["error"] = e.Err.Error()
	case recorder.EventResumed:
		ev.Type = "recording.resumed"
		ev.Data["state"] = state.Live.String()
		ev.Data["dropped_segments"] = e.Dropped
	default:
		return
	}
	g.events.Publish(ev)
}

var _ web.Recorder = (*recorder.Recorder)(nil)

// restreamOutputs is the restream manager as the API's web.Outputs.
type restreamOutputs struct{ r *outputs.Restream }

func outputStatus(o outputs.Output) web.OutputStatus {
	return web.OutputStatus{ID: o.ID, Kind: "rtmp", URL: o.URL, Enhanced: o.Enhanced, State: o.State.String(), Error: o.LastError, Since: o.Since}
}

func (o restreamOutputs) List(stream string) []web.OutputStatus {
	var out []web.OutputStatus
	for _, d := range o.r.List(stream) {
		out = append(out, outputStatus(d))
	}
	return out
}

func (o restreamOutputs) Add(stream string, spec web.OutputSpec) (web.OutputStatus, error) {
	if spec.Kind != "" && spec.Kind != "rtmp" {
		return web.OutputStatus{}, fmt.Errorf("%w: kind %q: only \"rtmp\" (rtmp:// and rtmps:// URLs)", web.ErrBadOutput, spec.Kind)
	}
	if spec.MaxRetries < 0 {
		return web.OutputStatus{}, fmt.Errorf("%w: max_retries %d: must be 0 (retry forever) or more", web.ErrBadOutput, spec.MaxRetries)
	}
	d, err := o.r.Add(stream, outputs.Destination{URL: spec.URL, Enhanced: spec.Enhanced, MaxRetries: spec.MaxRetries})
	switch {
	case errors.Is(err, rtmp.ErrBadURL):
		return web.OutputStatus{}, fmt.Errorf("%w: %w", web.ErrBadOutput, err)
	case errors.Is(err, codec.ErrNoCodecs):
		return web.OutputStatus{}, fmt.Errorf("%w: %w", web.ErrBadOutput, err)
	case err != nil:
		return web.OutputStatus{}, err
	}
	return outputStatus(d), nil
}

func (o restreamOutputs) Remove(stream, id string) error {
	err := o.r.Remove(stream, id)
	if errors.Is(err, outputs.ErrNoDestination) || errors.Is(err, outputs.ErrNotLive) {
		return fmt.Errorf("%w: %q", web.ErrNoOutput, id)
	}
	return err
}

// originEvent forwards the origin publisher's events: storage that does
// not keep up (segments published as gaps) and its recovery.
func (g *Gateway) originEvent(e origin.Event) {
	ev := events.Event{Stream: e.Stream, Data: map[string]any{"key": e.Key, "dropped_segments": e.Dropped}}
	switch e.Kind {
	case origin.EventRetrying:
		ev.Type = "origin.retrying"
		ev.Data["state"] = state.Retrying.String()
		ev.Data["error"] = e.Err.Error()
	case origin.EventResumed:
		ev.Type = "origin.resumed"
		ev.Data["state"] = state.Live.String()
	default:
		return
	}
	g.events.Publish(ev)
}

// outputEvent turns a destination's state change into an output.state event
// (the URL with its key as ****, the last error in words).
func (g *Gateway) outputEvent(stream, id string, s rtmp.Status) {
	if g.events == nil {
		return
	}
	g.events.Publish(events.Event{Type: "output.state", Stream: stream, Data: map[string]any{
		"id": id, "kind": "rtmp", "url": s.URL, "state": s.State.String(), "error": s.LastError}})
}
