package web

import (
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/storage"
)

// MetricsOptions are what /metrics reads at scrape time. Nil fields leave
// their metrics out.
type MetricsOptions struct {
	// Streams are the live streams (per-stream counters).
	Streams Streams
	// Recordings counts the recordings in progress.
	Recordings func() int
	// Spool is the upload spool's status.
	Spool func() storage.SpoolStatus
	// Events counts the event sockets.
	Events *Bus
}

// Metrics is the Prometheus registry of the gateway and the middlewares
// that count requests. Each gateway has its own registry (no globals), so
// tests can run several.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	publish  *prometheus.CounterVec
}

// NewMetrics registers the gateway's metrics.
func NewMetrics(opt MetricsOptions) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "whipcast_http_media_requests_total",
		Help: "HLS and DASH requests by format, kind of file (playlist, manifest, init, segment, part) and status code.",
	}, []string{"format", "kind", "code"})
	m.publish = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "whipcast_whip_publishes_total",
		Help: "WHIP publish attempts (POST) by result: ok, unauthorized, forbidden, busy, bad_request, unavailable, error.",
	}, []string{"result"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "whipcast_http_media_bytes_total",
		Help: "Bytes of HLS and DASH responses (playlists, manifests and media) by format.",
	}, []string{"format"})
	m.reg.MustRegister(m.requests, m.bytesOut, m.publish)
	if opt.Streams != nil {
		m.reg.MustRegister(streamCollector{opt.Streams})
	}
	if opt.Recordings != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "whipcast_recordings_open", Help: "Recordings in progress.",
		}, func() float64 { return float64(opt.Recordings()) }))
	}
	if opt.Spool != nil {
		m.reg.MustRegister(spoolCollector{opt.Spool})
	}
	if opt.Events != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "whipcast_event_subscribers", Help: "Open /v1/events sockets.",
		}, func() float64 { return float64(opt.Events.Subscribers()) }))
	}
	return m
}

// Handler serves the text exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// AddRateLimiter exports l's refusals (whipcast_http_rate_limited_total by
// route) and tracked clients. A nil l adds nothing.
func (m *Metrics) AddRateLimiter(l *RateLimiter) {
	if l != nil {
		m.reg.MustRegister(rateCollector{l})
	}
}

var (
	descRateLimited = prometheus.NewDesc("whipcast_http_rate_limited_total", "Requests refused with 429 by limits.rate, by route (whip, whep, api).", []string{"route"}, nil)
	descRateClients = prometheus.NewDesc("whipcast_http_rate_clients", "Client IPs with a rate-limit bucket now (bounded by limits.rate.max_clients).", nil, nil)
)

type rateCollector struct{ l *RateLimiter }

func (c rateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRateLimited
	ch <- descRateClients
}

func (c rateCollector) Collect(ch chan<- prometheus.Metric) {
	ref := c.l.Refused()
	for _, r := range rateRoutes {
		ch <- prometheus.MustNewConstMetric(descRateLimited, prometheus.CounterValue, float64(ref[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descRateClients, prometheus.GaugeValue, float64(c.l.Clients()))
}

// Registry lets other parts register their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var (
	descLive    = prometheus.NewDesc("whipcast_streams_live", "Streams being published.", nil, nil)
	descHeld    = prometheus.NewDesc("whipcast_streams_interrupted", "Streams whose publisher dropped, waiting webrtc.reconnect_window for it.", nil, nil)
	descFrames  = prometheus.NewDesc("whipcast_stream_frames_in_total", "Frames received per live stream.", []string{"stream"}, nil)
	descBytes   = prometheus.NewDesc("whipcast_stream_bytes_in_total", "Payload bytes received per live stream.", []string{"stream"}, nil)
	descReaders = prometheus.NewDesc("whipcast_stream_readers", "Consumers attached per live stream.", []string{"stream"}, nil)
	descDropped = prometheus.NewDesc("whipcast_stream_readers_dropped_total", "Consumers dropped for falling behind, per live stream.", []string{"stream"}, nil)
	descSkips   = prometheus.NewDesc("whipcast_stream_reader_skips_total", "Times a consumer fell a whole queue behind and skipped to the next keyframe, per live stream and consumer kind (transmux, aac-stage, rtmp, whep, filter, motion, composite).", []string{"stream", "reader"}, nil)
	descSkipped = prometheus.NewDesc("whipcast_stream_reader_skipped_frames_total", "Frames those skips cost the consumer (what it had queued and the frames before the next keyframe), per live stream and consumer kind.", []string{"stream", "reader"}, nil)
)

// streamCollector reads the live streams' counters at scrape time: no
// per-frame cost, and a stream's series disappear when it ends.
type streamCollector struct{ s Streams }

func (c streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLive, descHeld, descFrames, descBytes, descReaders, descDropped, descSkips, descSkipped} {
		ch <- d
	}
}

func (c streamCollector) Collect(ch chan<- prometheus.Metric) {
	ss := c.s.List()
	held := 0
	for _, s := range ss {
		if st, _, _ := s.State(); st == media.StateInterrupted {
			held++
		}
	}
	ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(len(ss)-held))
	ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(held))
	for _, s := range ss {
		frames, bytes := s.Stats()
		ch <- prometheus.MustNewConstMetric(descFrames, prometheus.CounterValue, float64(frames), s.Name)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(bytes), s.Name)
		ch <- prometheus.MustNewConstMetric(descReaders, prometheus.GaugeValue, float64(s.Readers()), s.Name)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped()), s.Name)
		for kind, c := range s.Skips() {
			ch <- prometheus.MustNewConstMetric(descSkips, prometheus.CounterValue, float64(c.Skips), s.Name, kind)
			ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(c.Frames), s.Name, kind)
		}
	}
}

var (
	descSpoolPending  = prometheus.NewDesc("whipcast_spool_pending", "Objects spooled and not yet confirmed uploaded.", nil, nil)
	descSpoolUploaded = prometheus.NewDesc("whipcast_spool_uploaded_total", "Objects uploaded to storage.", nil, nil)
	descSpoolFailed   = prometheus.NewDesc("whipcast_spool_failures_total", "Failed upload attempts (each is retried).", nil, nil)
	descSpoolUp       = prometheus.NewDesc("whipcast_spool_healthy", "1 while uploads succeed, 0 while they are retried.", nil, nil)
)

type spoolCollector struct{ status func() storage.SpoolStatus }

func (c spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSpoolPending, descSpoolUploaded, descSpoolFailed, descSpoolUp} {
		ch <- d
	}
}

func (c spoolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	up := 0.0
	if st.State == "live" {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descSpoolPending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(descSpoolUploaded, prometheus.CounterValue, float64(st.Uploaded))
	ch <- prometheus.MustNewConstMetric(descSpoolFailed, prometheus.CounterValue, float64(st.Failures))
	ch <- prometheus.MustNewConstMetric(descSpoolUp, prometheus.GaugeValue, up)
}

// countMedia wraps the /hls/ or /dash/ handler (prefix stripped) and
// counts its requests.
func (m *Metrics) countMedia(format string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		m.requests.WithLabelValues(format, mediaKind(r.URL.Path), strconv.Itoa(sw.status)).Inc()
		m.bytesOut.WithLabelValues(format).Add(float64(sw.bytes))
	})
}

// mediaKind classifies a packager file name (packager/hls_request.go,
// dash_request.go) into a few label values.
func mediaKind(p string) string {
	f := path.Base(p)
	switch {
	case strings.HasSuffix(f, ".m3u8"):
		return "playlist"
	case strings.HasSuffix(f, ".mpd"):
		return "manifest"
	case strings.Contains(f, "init") && strings.HasSuffix(f, ".mp4"):
		return "init"
	case strings.Contains(f, "_part"):
		return "part"
	case strings.HasSuffix(f, ".m4s"):
		return "segment"
	}
	return "other"
}

// countPublish wraps the WHIP handler and counts POST results.
func (m *Metrics) countPublish(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		result := "error"
		switch sw.status {
		case http.StatusCreated:
			result = "ok"
		case http.StatusUnauthorized:
			result = "unauthorized"
		case http.StatusForbidden:
			result = "forbidden"
		case http.StatusConflict:
			result = "busy"
		case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusRequestEntityTooLarge:
			result = "bad_request"
		case http.StatusServiceUnavailable:
			result = "unavailable"
		}
		m.publish.WithLabelValues(result).Inc()
	})
}
