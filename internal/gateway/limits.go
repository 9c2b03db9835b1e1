package gateway

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/internal/admission"
	"github.com/whipcast/whipcast/web"
)

// newAdmission makes the admission check of limits.* that ingest asks
// before each new publisher and WHEP viewer; startAdmission starts it.
func (g *Gateway) newAdmission() *admission.Controller {
	l := g.cfg.Limits
	c := admission.New(admission.Settings{
		MaxPublishers:       l.MaxPublishers,
		MaxViewersPerStream: l.MaxViewersPerStream,
		MaxViewers:          l.MaxViewers,
		MaxCPU:              l.MaxCPU,
		PublisherCost:       publisherCost(g.cfg),
		MaxMachineCPU:       l.MaxMachineCPU,
		MaxLag:              l.MaxLag,
		// Read by the sampler only, which startAdmission starts once
		// g.ingest is set.
		Publishers: func() int { return g.ingest.Publishers() },
		Logger:     g.log.With("component", "admission"),
	})
	return c
}

// publisherCost is limits.publisher_cost, or when 0 the estimate for
// audio.codec: a gateway that transcodes Opus to AAC for every stream
// spends about 2.5 times what a passthrough one does.
func publisherCost(cfg *config.Config) float64 {
	switch {
	case cfg.Limits.PublisherCost > 0:
		return cfg.Limits.PublisherCost
	case cfg.Audio.Codec == config.AudioAAC:
		return admission.DefaultPublisherCost
	}
	return admission.PassthroughPublisherCost
}

// startAdmission starts the admission's load sampler, which counts ingest's
// publishers (stopped by closeParts).
func (g *Gateway) startAdmission() { g.admission.Start() }

// newRateLimiter is limits.rate with http.trusted_proxies (validated by
// config); nil when off.
func newRateLimiter(cfg *config.Config) *web.RateLimiter {
	r := cfg.Limits.Rate
	var proxies []netip.Prefix
	for _, p := range cfg.HTTP.TrustedProxies {
		if pp, err := config.ParsePrefix(p); err == nil {
			proxies = append(proxies, pp)
		}
	}
	return web.NewRateLimiter(web.RateSettings{Requests: r.Requests, Burst: r.Burst, MaxClients: r.MaxClients,
		ExemptLoopback: r.ExemptLoopback, TrustedProxies: proxies})
}

// limitsState is GET /v1/limits.
func (g *Gateway) limitsState() admission.State {
	viewers, _ := g.ingest.ViewerCounts()
	st := g.admission.State(g.ingest.Publishers(), viewers)
	if g.rate != nil {
		st.RateLimited, st.RateClients = g.rate.Refused(), g.rate.Clients()
	}
	to := g.ingest.Timeouts()
	st.Timeouts = map[string]uint64{"publish_ice": to.PublishICE, "publish_idle": to.PublishIdle,
		"publish_media": to.PublishMedia, "play_ice": to.PlayICE}
	return st
}

var (
	descRefused     = prometheus.NewDesc("whipcast_publish_refused_total", "New publishers refused with 503 by admission control, by the limit that refused (max_publishers, cpu, cpu_projected, machine_cpu, lag).", []string{"reason"}, nil)
	descPlayRefused = prometheus.NewDesc("whipcast_play_refused_total", "New WHEP viewers refused with 503 by admission control, by the limit that refused (max_viewers_per_stream, max_viewers).", []string{"reason"}, nil)
	descPublishers  = prometheus.NewDesc("whipcast_publishers", "Publishers counted against limits.max_publishers: live, negotiating and held for a reconnect.", nil, nil)
	descTimeouts    = prometheus.NewDesc("whipcast_session_timeouts_total", "WebRTC sessions ended for a timeout, by role (publish, play) and timeout: ice (limits.ice_timeout: ICE/DTLS never connected), idle (limits.publish_idle_timeout: connected, no RTP), media (RTP stopped).", []string{"role", "reason"}, nil)
	descCPU         = prometheus.NewDesc("whipcast_admission_cpu_ratio", "The process's CPU over the last 5 s as a fraction of the cores it may use (limits.max_cpu compares with it).", nil, nil)
	descCPUProj     = prometheus.NewDesc("whipcast_admission_cpu_projected_ratio", "whipcast_admission_cpu_ratio plus the estimated share of the publishers not yet in that measurement (limits.max_cpu compares with it too; limits.publisher_cost).", nil, nil)
	descMachine     = prometheus.NewDesc("whipcast_admission_machine_cpu_ratio", "The whole machine's CPU (every process, /proc/stat) over the last 5 s as a fraction of its cores (limits.max_machine_cpu compares with it, and with it plus the unmeasured publishers' share).", nil, nil)
	descLag         = prometheus.NewDesc("whipcast_admission_sched_lag_seconds", "99th percentile of the time runnable goroutines waited for a CPU over the last 5 s (limits.max_lag compares with it).", nil, nil)
	descAdmitting   = prometheus.NewDesc("whipcast_admission_admitting", "1 while a new publisher would be admitted, 0 while they are refused.", nil, nil)
)

// limitsCollector reads the admission state at scrape time.
type limitsCollector struct{ g *Gateway }

func (c limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRefused, descPlayRefused, descPublishers, descTimeouts, descCPU, descCPUProj, descMachine, descLag, descAdmitting} {
		ch <- d
	}
}

func (c limitsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.limitsState()
	for _, r := range admission.Reasons {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(st.Refused[r]), r)
	}
	for _, r := range admission.ViewerReasons {
		ch <- prometheus.MustNewConstMetric(descPlayRefused, prometheus.CounterValue, float64(st.ViewersRefused[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descPublishers, prometheus.GaugeValue, float64(st.Publishers))
	to := c.g.ingest.Timeouts()
	for _, t := range []struct {
		role, reason string
		n            uint64
	}{{"publish", "ice", to.PublishICE}, {"publish", "idle", to.PublishIdle}, {"publish", "media", to.PublishMedia}, {"play", "ice", to.PlayICE}} {
		ch <- prometheus.MustNewConstMetric(descTimeouts, prometheus.CounterValue, float64(t.n), t.role, t.reason)
	}
	ch <- prometheus.MustNewConstMetric(descCPU, prometheus.GaugeValue, st.CPU)
	ch <- prometheus.MustNewConstMetric(descCPUProj, prometheus.GaugeValue, st.CPUProjected)
	ch <- prometheus.MustNewConstMetric(descMachine, prometheus.GaugeValue, st.Machine)
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, st.LagSeconds)
	admitting := 0.0
	if st.Admitting {
		admitting = 1
	}
	ch <- prometheus.MustNewConstMetric(descAdmitting, prometheus.GaugeValue, admitting)
}

// registerLimitMetrics adds the admission and rate-limit metrics to the
// gateway's registry.
func (g *Gateway) registerLimitMetrics(m *web.Metrics) {
	if m != nil {
		m.Registry().MustRegister(limitsCollector{g})
		m.AddRateLimiter(g.rate)
	}
}

// ingestLimits are the limits.* that ingest applies itself.
func ingestLimits(c *ingest.Config, l config.Limits) {
	c.ICETimeout, c.PublishIdleTimeout = l.ICETimeout, l.PublishIdleTimeout
}
