package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// RTMPReport is what the RTMP sink received, over the run's publishers.
// Times are from each publisher's WHIP POST; rates are means over the
// streams received.
type RTMPReport struct {
	Listen string `json:"listen"`
	// Streams counts publishers whose stream the sink received.
	Streams int `json:"streams"`
	// Publishes counts every publish the sink accepted (reconnects and
	// names no publisher has included); Reconnects the further publishes
	// of a received stream.
	Publishes  int `json:"publishes"`
	Reconnects int `json:"reconnects"`
	// Connect is WHIP POST → the RTMP publish of that stream's name.
	Connect Summary `json:"connect"`
	// FirstVideo and FirstAudio are WHIP POST → the first video / audio
	// frame (not sequence header) received.
	FirstVideo Summary `json:"first_video"`
	FirstAudio Summary `json:"first_audio"`
	// AVStart is the first audio frame's timestamp minus the first video
	// frame's, per stream (0 when they start together).
	AVStart Summary `json:"av_start"`
	// VideoCodecs and AudioCodecs count streams by the codec of their
	// first message: AVC, AAC, or an E-RTMP FourCC (Opus, hvc1, ...).
	VideoCodecs map[string]int `json:"video_codecs"`
	AudioCodecs map[string]int `json:"audio_codecs"`
	VideoFrames int            `json:"video_frames"`
	AudioFrames int            `json:"audio_frames"`
	Bytes       int64          `json:"bytes"`
	// VideoFPS and AudioFPS are frames per second of each track, first to
	// last frame; KbpsPerStream is the bytes of both over the stream's time.
	VideoFPS      float64 `json:"video_fps"`
	AudioFPS      float64 `json:"audio_fps"`
	KbpsPerStream float64 `json:"kbps_per_stream"`
	// Gaps counts frames more than gapLimit ms after their track's one
	// before; NonMonotonic frames at or before it.
	Gaps         int `json:"gaps"`
	NonMonotonic int `json:"non_monotonic"`
	// Lag is, per frame of every stream, its arrival after the stream's
	// first frame minus its timestamp after the first frame's, counted
	// from the least such value of the stream: how much later than the
	// promptest frame it came (jitter, bursts, queues). StartLag is the
	// first frame's, per stream: how long the start held it.
	Lag      Summary `json:"lag"`
	StartLag Summary `json:"start_lag"`
	// Drift is, per stream, the median lag of its last quarter of frames
	// minus that of its first quarter (positive: falling behind).
	Drift Summary `json:"drift"`
}

// summarizeRTMP matches the sink's publishes to the publishers by stream
// name and folds them into the report.
func summarizeRTMP(c Config, rs []streamResult, got []*sinkStream) *RTMPReport {
	m := &RTMPReport{Listen: c.RTMPListen, Publishes: len(got), VideoCodecs: map[string]int{}, AudioCodecs: map[string]int{}}
	var connect, firstV, firstA, avStart, lags, startLags, drifts []time.Duration
	var fps, afps, kbps float64
	for _, r := range rs {
		if !r.connected {
			continue
		}
		s, more := match(got, r.name)
		if s == nil {
			continue
		}
		m.Streams++
		m.Reconnects += more
		x := s.result()
		connect = append(connect, x.publish.Sub(r.post))
		if !x.firstVideo.IsZero() {
			firstV = append(firstV, x.firstVideo.Sub(r.post))
		}
		if !x.firstAudio.IsZero() {
			firstA = append(firstA, x.firstAudio.Sub(r.post))
		}
		if x.haveAV {
			avStart = append(avStart, x.avStart)
		}
		if x.videoCodec != "" {
			m.VideoCodecs[x.videoCodec]++
		}
		if x.audioCodec != "" {
			m.AudioCodecs[x.audioCodec]++
		}
		m.VideoFrames += x.videoFrames
		m.AudioFrames += x.audioFrames
		m.Bytes += x.bytes
		m.Gaps += x.gaps
		m.NonMonotonic += x.nonMono
		lags = append(lags, x.lags...)
		if x.haveStart {
			startLags = append(startLags, x.startLag)
		}
		if x.haveDrift {
			drifts = append(drifts, x.drift)
		}
		fps += x.videoFPS
		afps += x.audioS
		if x.seconds > 0 {
			kbps += float64(x.bytes) * 8 / 1000 / x.seconds
		}
	}
	m.Connect, m.FirstVideo, m.FirstAudio = summarize(connect), summarize(firstV), summarize(firstA)
	m.AVStart, m.Lag, m.StartLag, m.Drift = summarize(avStart), summarize(lags), summarize(startLags), summarize(drifts)
	if m.Streams > 0 {
		n := float64(m.Streams)
		m.VideoFPS, m.AudioFPS, m.KbpsPerStream = round(fps/n, 2), round(afps/n, 2), round(kbps/n, 1)
	}
	return m
}

// codecs prints a codec count as "AVC×5 Opus×1", or "none".
func codecs(c map[string]int) string {
	if len(c) == 0 {
		return "none"
	}
	var b []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		b = append(b, fmt.Sprintf("%s×%d", k, c[k]))
	}
	return strings.Join(b, " ")
}
