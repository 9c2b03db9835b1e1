package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// Report is one run's result: the JSON line's fields.
type Report struct {
	Label     string `json:"label,omitempty"`
	N         int    `json:"n"`
	Connected int    `json:"connected"`
	// With -retry: 503s the publishers got, and how many of the connected
	// got in after at least one.
	Refusals     int     `json:"refusals,omitempty"`
	AfterRefusal int     `json:"connected_after_refusal,omitempty"`
	Phase        string  `json:"phase"`
	Seconds      float64 `json:"duration_s"`

	Connect   Summary `json:"connect"`
	FirstHLS  Summary `json:"first_hls_segment"`
	HLSDelay  Summary `json:"hls_packaging_delay"`
	FirstDASH Summary `json:"first_dash_segment"`
	DASHDelay Summary `json:"dash_packaging_delay"`

	HLSFetches  int   `json:"hls_fetches"`
	HLSErrors   int   `json:"hls_errors"`
	HLSBytes    int64 `json:"hls_bytes"`
	DASHFetches int   `json:"dash_fetches"`
	DASHErrors  int   `json:"dash_errors"`

	// Loss, as the gateway's RTCP receiver reports gave it.
	Lost            int     `json:"lost_packets"`
	MaxFractionLost float64 `json:"max_fraction_lost"`
	ReceiverReports int     `json:"receiver_reports"`
	PLIs            int     `json:"plis"`
	NACKs           int     `json:"nacks"`

	// Pacing: frames sent against real time, and late samples.
	VideoFrames    int     `json:"video_frames"`
	ExpectedFrames int     `json:"expected_frames"`
	Pacing         float64 `json:"pacing"`
	Late           int     `json:"late_samples"`
	MaxLateMS      float64 `json:"max_late_ms"`

	// Gateway process (with -pid) over the window when every publisher
	// was sending, and the machine over the same window.
	WindowSeconds  float64 `json:"window_s,omitempty"`
	Cores          float64 `json:"cores,omitempty"`
	CoresPerStream float64 `json:"cores_per_stream,omitempty"`
	PeakRSS        int64   `json:"peak_rss_bytes,omitempty"`
	RSS            int64   `json:"rss_bytes,omitempty"`
	PeakRSSStream  int64   `json:"peak_rss_per_stream_bytes,omitempty"`
	MachineBusy    float64 `json:"machine_busy,omitempty"`

	// RTMP is what the RTMP sink (-rtmp-listen) received; nil without one.
	RTMP *RTMPReport `json:"rtmp,omitempty"`

	Errors []string `json:"errors,omitempty"`
}

// maxErrors is how many distinct errors a report lists.
const maxErrors = 5

// summarizeRun folds the streams' results into a report.
func summarizeRun(c Config, rs []streamResult) Report {
	r := Report{Label: c.Label, N: c.N, Phase: c.Phase, Seconds: c.Duration.Seconds()}
	var connect, firstHLS, firstDASH, hlsDelay, dashDelay []time.Duration
	var maxLate time.Duration
	addErr := func(e string) {
		if e != "" && len(r.Errors) < maxErrors && !slices.Contains(r.Errors, e) {
			r.Errors = append(r.Errors, e)
		}
	}
	for _, s := range rs {
		addErr(s.err)
		r.Refusals += s.refusals
		if !s.connected {
			continue
		}
		r.Connected++
		if s.refusals > 0 {
			r.AfterRefusal++
		}
		connect = append(connect, s.connect)
		st := s.stats
		r.Lost += st.Lost
		r.MaxFractionLost = max(r.MaxFractionLost, st.MaxFractionLost)
		r.ReceiverReports += st.ReceiverReports
		r.PLIs += st.PLIs
		r.NACKs += st.NACKs
		r.VideoFrames += st.VideoFrames
		r.ExpectedFrames += int(math.Round(s.sent.Seconds() * float64(c.FPS)))
		r.Late += st.Late
		maxLate = max(maxLate, st.MaxLate)
		if h := s.hls; h != nil {
			if h.First > 0 {
				firstHLS = append(firstHLS, h.First)
			}
			hlsDelay = append(hlsDelay, h.Delays...)
			r.HLSFetches += h.Fetches
			r.HLSErrors += h.Errors
			r.HLSBytes += h.Bytes
			addErr(h.Err)
		}
		if d := s.dash; d != nil {
			if d.First > 0 {
				firstDASH = append(firstDASH, d.First)
			}
			dashDelay = append(dashDelay, d.Delays...)
			r.DASHFetches += d.Fetches
			r.DASHErrors += d.Errors
			addErr(d.Err)
		}
	}
	r.Connect = summarize(connect)
	r.FirstHLS = summarize(firstHLS)
	r.HLSDelay = summarize(hlsDelay)
	r.FirstDASH = summarize(firstDASH)
	r.DASHDelay = summarize(dashDelay)
	r.MaxLateMS = ms(maxLate)
	if r.ExpectedFrames > 0 {
		r.Pacing = round(float64(r.VideoFrames)/float64(r.ExpectedFrames), 4)
	}
	return r
}

// addProcess fills the CPU and memory fields from two samples (a and b)
// and the memory read at the end.
func (r *Report) addProcess(a, b sample, pid int, hwm, rss int64) {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return
	}
	r.WindowSeconds = round(wall.Seconds(), 2)
	if b.total > a.total {
		r.MachineBusy = round(float64(b.busy-a.busy)/float64(b.total-a.total), 3)
	}
	if pid <= 0 {
		return
	}
	r.Cores = round((b.cpu-a.cpu).Seconds()/wall.Seconds(), 4)
	if r.Connected > 0 {
		r.CoresPerStream = round(r.Cores/float64(r.Connected), 5)
		r.PeakRSSStream = hwm / int64(r.Connected)
	}
	r.PeakRSS, r.RSS = hwm, rss
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// writeJSON writes the report as one line.
func (r Report) writeJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeTable writes the report for a person: the distributions, then the
// counters, aligned.
func (r Report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "ms\tn\tp50\tp95\tmax\t\n")
	for _, row := range []struct {
		name string
		s    Summary
	}{
		{"connect", r.Connect},
		{"first HLS segment", r.FirstHLS},
		{"HLS packaging delay", r.HLSDelay},
		{"first DASH segment", r.FirstDASH},
		{"DASH packaging delay", r.DASHDelay},
	} {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t\n", row.name, row.s.N, row.s.P50, row.s.P95, row.s.Max)
	}
	if m := r.RTMP; m != nil {
		for _, row := range []struct {
			name string
			s    Summary
		}{
			{"RTMP publish", m.Connect},
			{"first RTMP video", m.FirstVideo},
			{"first RTMP audio", m.FirstAudio},
			{"RTMP A/V start", m.AVStart},
			{"RTMP lag", m.Lag},
			{"RTMP start lag", m.StartLag},
			{"RTMP drift", m.Drift},
		} {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t\n", row.name, row.s.N, row.s.P50, row.s.P95, row.s.Max)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw)
	line := func(k, f string, v ...any) { fmt.Fprintf(tw, "%s\t"+f+"\n", append([]any{k}, v...)...) }
	if r.Label != "" {
		line("run", "%s", r.Label)
	}
	line("streams", "%d of %d connected, %s phases, %.0f s each", r.Connected, r.N, r.Phase, r.Seconds)
	if r.Refusals > 0 {
		line("refused (503)", "%d times; %d publishers got in after a refusal", r.Refusals, r.AfterRefusal)
	}
	line("loss (RTCP RR)", "%d packets lost, max fraction %.3f, %d report blocks", r.Lost, r.MaxFractionLost, r.ReceiverReports)
	line("pacing", "%d of %d frames (%.4f), %d late samples, max %.1f ms late", r.VideoFrames, r.ExpectedFrames, r.Pacing, r.Late, r.MaxLateMS)
	line("PLI / NACK", "%d / %d", r.PLIs, r.NACKs)
	line("HLS fetches", "%d (%d errors, %.1f MB)", r.HLSFetches, r.HLSErrors, float64(r.HLSBytes)/1e6)
	line("DASH fetches", "%d (%d errors)", r.DASHFetches, r.DASHErrors)
	if r.WindowSeconds > 0 {
		line("machine busy", "%.1f %% over %.1f s", r.MachineBusy*100, r.WindowSeconds)
	}
	if r.Cores > 0 || r.PeakRSS > 0 {
		line("gateway CPU", "%.3f cores, %.4f per stream", r.Cores, r.CoresPerStream)
		line("gateway memory", "peak RSS %.1f MiB (%.1f MiB per stream), RSS %.1f MiB", mib(r.PeakRSS), mib(r.PeakRSSStream), mib(r.RSS))
	}
	if m := r.RTMP; m != nil {
		line("RTMP sink", "%s: %d of %d streams received (%d publishes, %d reconnects), video %s, audio %s",
			m.Listen, m.Streams, r.Connected, m.Publishes, m.Reconnects, codecs(m.VideoCodecs), codecs(m.AudioCodecs))
		line("RTMP frames", "%d video (%.2f/s per stream), %d audio (%.2f/s), %.0f kb/s per stream",
			m.VideoFrames, m.VideoFPS, m.AudioFrames, m.AudioFPS, m.KbpsPerStream)
		line("RTMP timestamps", "%d gaps over %d ms, %d not increasing", m.Gaps, gapLimit, m.NonMonotonic)
	}
	for _, e := range r.Errors {
		line("error", "%s", e)
	}
	return tw.Flush()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
