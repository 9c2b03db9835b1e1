package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/whipcast/whipcast/internal/admission"
	"github.com/whipcast/whipcast/web"
)

// newAdmission makes the admission check of limits.* that ingest asks
// before each new publisher, and starts its load sampler (stopped by
// closeParts).
func (g *Gateway) newAdmission() *admission.Controller {
	l := g.cfg.Limits
	c := admission.New(admission.Settings{
		MaxPublishers: l.MaxPublishers,
		MaxCPU:        l.MaxCPU,
		MaxLag:        l.MaxLag,
		Logger:        g.log.With("component", "admission"),
	})
	c.Start()
	return c
}

// limitsState is GET /v1/limits.
func (g *Gateway) limitsState() admission.State {
	return g.admission.State(g.ingest.Publishers())
}

var (
	descRefused    = prometheus.NewDesc("whipcast_publish_refused_total", "New publishers refused with 503 by admission control, by the limit that refused (max_publishers, cpu, lag).", []string{"reason"}, nil)
	descPublishers = prometheus.NewDesc("whipcast_publishers", "Publishers counted against limits.max_publishers: live, negotiating and held for a reconnect.", nil, nil)
	descCPU        = prometheus.NewDesc("whipcast_admission_cpu_ratio", "The process's CPU over the last 5 s as a fraction of the cores it may use (limits.max_cpu compares with it).", nil, nil)
	descLag        = prometheus.NewDesc("whipcast_admission_sched_lag_seconds", "99th percentile of the time runnable goroutines waited for a CPU over the last 5 s (limits.max_lag compares with it).", nil, nil)
	descAdmitting  = prometheus.NewDesc("whipcast_admission_admitting", "1 while a new publisher would be admitted, 0 while they are refused.", nil, nil)
)

// limitsCollector reads the admission state at scrape time.
type limitsCollector struct{ g *Gateway }

func (c limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRefused, descPublishers, descCPU, descLag, descAdmitting} {
		ch <- d
	}
}

func (c limitsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.limitsState()
	for _, r := range admission.Reasons {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(st.Refused[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descPublishers, prometheus.GaugeValue, float64(st.Publishers))
	ch <- prometheus.MustNewConstMetric(descCPU, prometheus.GaugeValue, st.CPU)
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, st.LagSeconds)
	admitting := 0.0
	if st.Admitting {
		admitting = 1
	}
	ch <- prometheus.MustNewConstMetric(descAdmitting, prometheus.GaugeValue, admitting)
}

// registerLimitMetrics adds the admission metrics to the gateway's registry.
func (g *Gateway) registerLimitMetrics(m *web.Metrics) {
	if m != nil {
		m.Registry().MustRegister(limitsCollector{g})
	}
}
