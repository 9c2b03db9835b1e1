package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

var (
	descRTPPackets = prometheus.NewDesc("whipcast_ingest_rtp_packets_total", "RTP packets received per live publish.", []string{"stream"}, nil)
	descRTPBytes   = prometheus.NewDesc("whipcast_ingest_rtp_bytes_total", "RTP bytes received per live publish (headers included).", []string{"stream"}, nil)
	descLost       = prometheus.NewDesc("whipcast_ingest_packets_lost_total", "RTP packets declared lost after NACK/RTX had their chance, per live publish.", []string{"stream"}, nil)
	descPLIs       = prometheus.NewDesc("whipcast_ingest_plis_sent_total", "Picture Loss Indications (keyframe requests) sent to the publisher.", []string{"stream"}, nil)
	descKeyframes  = prometheus.NewDesc("whipcast_ingest_keyframes_total", "Video keyframes received per live publish.", []string{"stream"}, nil)
	descKFI        = prometheus.NewDesc("whipcast_ingest_keyframe_interval_seconds", "Time between the last two keyframes of a live publish.", []string{"stream"}, nil)
	descMissing    = prometheus.NewDesc("whipcast_ingest_packets_missing_total", "RTP packets found missing on arrival (lost before repair), per live publish.", []string{"stream"}, nil)
	descRepaired   = prometheus.NewDesc("whipcast_ingest_packets_repaired_total", "Missing RTP packets that arrived within their wait (by retransmission or reordering), per live publish.", []string{"stream"}, nil)
	descRTX        = prometheus.NewDesc("whipcast_ingest_retransmissions_total", "RTX retransmissions received, per live publish.", []string{"stream"}, nil)
	descLate       = prometheus.NewDesc("whipcast_ingest_packets_late_total", "RTP packets that came after their hole was given up, and duplicates, per live publish.", []string{"stream"}, nil)
	descStreamNACK = prometheus.NewDesc("whipcast_ingest_stream_nacks_total", "Sequence numbers NACKed (each retry counts), per live publish.", []string{"stream"}, nil)
	descRTT        = prometheus.NewDesc("whipcast_ingest_rtt_seconds", "Round trip measured from NACK to repair, per live publish.", []string{"stream"}, nil)
	descDropped    = prometheus.NewDesc("whipcast_ingest_frames_dropped_total", "Video frames not passed on after a loss (until the next keyframe), per live publish.", []string{"stream"}, nil)
	descFreeze     = prometheus.NewDesc("whipcast_ingest_freeze_seconds_total", "Time without video output after a loss, per live publish.", []string{"stream"}, nil)
	descNACKs      = prometheus.NewDesc("whipcast_ingest_nacks_sent_total", "RTCP NACKs sent to publishers since start.", nil, nil)
	descOutState   = prometheus.NewDesc("whipcast_output_state", "1 for the current state of each RTMP destination.", []string{"stream", "id", "state"}, nil)
	descOutConns   = prometheus.NewDesc("whipcast_output_connects_total", "Successful connections of each RTMP destination (reconnects are connects beyond the first).", []string{"stream", "id"}, nil)
	descOutResyncs = prometheus.NewDesc("whipcast_output_resyncs_total", "Times an RTMP destination fell behind and skipped to the next keyframe.", []string{"stream", "id"}, nil)
	descAAC        = prometheus.NewDesc("whipcast_aac_transcodes", "Opus→AAC transcodes running (one per stream that HLS, DASH, a recording or a plain RTMP output reads).", nil, nil)
	descAACErrors  = prometheus.NewDesc("whipcast_aac_errors_total", "Opus packets the Opus→AAC transcode failed on (each an audio gap of ~20 ms, filled with silence when AAC resumes; video is not held), all streams since start.", nil, nil)
	descPackaged   = prometheus.NewDesc("whipcast_packaged_streams", "Streams being transmuxed to CMAF for HLS, DASH, recordings or the origin (on demand: a player within hls.idle, or a rule).", nil, nil)
	descSinkDrop   = prometheus.NewDesc("whipcast_sink_segments_dropped_total", "CMAF segments a recording (sink=recorder) or an origin publish (sink=origin) left out because storage did not keep up; live HLS and DASH are not affected.", []string{"sink"}, nil)
	descConsumErr  = prometheus.NewDesc("whipcast_consumer_errors_total", "Runs of a stream consumer that failed (an error or a panic) while the stream went on, by consumer kind.", []string{"consumer"}, nil)
	descSinkPanic  = prometheus.NewDesc("whipcast_sink_panics_total", "CMAF sinks (HLS, DASH, recorder, origin of one stream) cut off because they panicked; the stream's other outputs went on. Each is a bug: the log has its stack.", nil, nil)
	descWebhook    = prometheus.NewDesc("whipcast_motion_webhook_events_total", "Motion webhook events by result: delivered, failed (after retries), dropped (queue full).", []string{"result"}, nil)
)

// gatewayCollector reads ingest and output counters at scrape time, so the
// hot paths pay only their atomics.
type gatewayCollector struct {
	g *Gateway
	// rec is the storage side as it was when the metrics were made (nil
	// without one); g.rec goes nil at shutdown.
	rec *recording
}

func (c gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRTPPackets, descRTPBytes, descLost, descPLIs, descKeyframes, descKFI, descMissing, descRepaired, descRTX, descLate, descStreamNACK, descRTT, descDropped, descFreeze, descNACKs, descOutState, descOutConns, descOutResyncs, descAAC, descAACErrors, descPackaged, descSinkDrop, descConsumErr, descSinkPanic, descWebhook} {
		ch <- d
	}
}

func (c gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.g.ingest.Stats() {
		ch <- prometheus.MustNewConstMetric(descRTPPackets, prometheus.CounterValue, float64(st.RTPPackets), st.Stream)
		ch <- prometheus.MustNewConstMetric(descRTPBytes, prometheus.CounterValue, float64(st.RTPBytes), st.Stream)
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(st.PacketsLost), st.Stream)
		ch <- prometheus.MustNewConstMetric(descPLIs, prometheus.CounterValue, float64(st.PLIs), st.Stream)
		ch <- prometheus.MustNewConstMetric(descKeyframes, prometheus.CounterValue, float64(st.Keyframes), st.Stream)
		ch <- prometheus.MustNewConstMetric(descKFI, prometheus.GaugeValue, st.KeyframeInterval.Seconds(), st.Stream)
		ch <- prometheus.MustNewConstMetric(descMissing, prometheus.CounterValue, float64(st.PacketsMissing), st.Stream)
		ch <- prometheus.MustNewConstMetric(descRepaired, prometheus.CounterValue, float64(st.PacketsRepaired), st.Stream)
		ch <- prometheus.MustNewConstMetric(descRTX, prometheus.CounterValue, float64(st.Retransmissions), st.Stream)
		ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, float64(st.PacketsLate), st.Stream)
		ch <- prometheus.MustNewConstMetric(descStreamNACK, prometheus.CounterValue, float64(st.NACKs), st.Stream)
		ch <- prometheus.MustNewConstMetric(descRTT, prometheus.GaugeValue, st.RTT.Seconds(), st.Stream)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.FramesDropped), st.Stream)
		ch <- prometheus.MustNewConstMetric(descFreeze, prometheus.CounterValue, st.FreezeTime.Seconds(), st.Stream)
	}
	ch <- prometheus.MustNewConstMetric(descNACKs, prometheus.CounterValue, float64(c.g.ingest.NACKsSent()))
	if c.g.AAC != nil {
		ch <- prometheus.MustNewConstMetric(descAAC, prometheus.GaugeValue, float64(c.g.AAC.Running()))
		ch <- prometheus.MustNewConstMetric(descAACErrors, prometheus.CounterValue, float64(c.g.AAC.Errors()))
	}
	for kind, n := range c.g.Registry.ConsumerErrors() {
		ch <- prometheus.MustNewConstMetric(descConsumErr, prometheus.CounterValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(descPackaged, prometheus.GaugeValue, float64(c.g.cmaf.Running()))
	ch <- prometheus.MustNewConstMetric(descSinkPanic, prometheus.CounterValue, float64(c.g.cmaf.SinkPanics()))
	if rec := c.rec; rec != nil {
		ch <- prometheus.MustNewConstMetric(descSinkDrop, prometheus.CounterValue, float64(rec.rec.Dropped()), "recorder")
		if rec.origin != nil {
			ch <- prometheus.MustNewConstMetric(descSinkDrop, prometheus.CounterValue, float64(rec.origin.Dropped()), "origin")
		}
	}
	if c.g.motion != nil {
		wh := c.g.motion.webhookStats()
		ch <- prometheus.MustNewConstMetric(descWebhook, prometheus.CounterValue, float64(wh.Delivered), "delivered")
		ch <- prometheus.MustNewConstMetric(descWebhook, prometheus.CounterValue, float64(wh.Failed), "failed")
		ch <- prometheus.MustNewConstMetric(descWebhook, prometheus.CounterValue, float64(wh.Dropped), "dropped")
	}
	if c.g.Restream == nil {
		return
	}
	for _, s := range c.g.Registry.List() {
		for _, o := range c.g.Restream.List(s.Name) {
			ch <- prometheus.MustNewConstMetric(descOutState, prometheus.GaugeValue, 1, s.Name, o.ID, o.State.String())
			ch <- prometheus.MustNewConstMetric(descOutConns, prometheus.CounterValue, float64(o.Connects), s.Name, o.ID)
			ch <- prometheus.MustNewConstMetric(descOutResyncs, prometheus.CounterValue, float64(o.Resyncs), s.Name, o.ID)
		}
	}
}

// segmentLag observes, for every CMAF segment, how long after the capture
// of its last frame it was complete: the time a live edge lags behind the
// camera before players add their own buffer. Capture times come from the
// publisher's RTCP Sender Reports, so a publisher with a wrong clock skews it.
type segmentLag struct{ h prometheus.Histogram }

func newSegmentLag(reg prometheus.Registerer) *segmentLag {
	l := &segmentLag{h: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "whipcast_segment_production_lag_seconds",
		Help:    "From the capture of a segment's last frame to the segment being complete (video track).",
		Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5},
	})}
	reg.MustRegister(l.h)
	return l
}

// consumer is a transmux.Consumer that only watches video segments.
func (l *segmentLag) consumer(*media.Stream) transmux.Sink { return l }

func (l *segmentLag) OnInit(*transmux.Init) {}
func (l *segmentLag) OnPart(*transmux.Part) {}
func (l *segmentLag) OnEnd(error)           {}
func (l *segmentLag) OnSegment(seg *transmux.Segment) {
	if seg.Init == nil || seg.Init.Track == nil || seg.Init.Track.Kind != media.KindVideo || seg.Time.IsZero() {
		return
	}
	end := seg.Time.Add(time.Duration(seg.Seconds() * float64(time.Second)))
	if lag := time.Since(end); lag > -time.Second && lag < time.Minute {
		l.h.Observe(max(lag, 0).Seconds())
	}
}
