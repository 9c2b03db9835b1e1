package web

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/origin"
	"github.com/whipcast/whipcast/outputs/recorder"
)

// StreamInfo is a live stream as GET /v1/streams shows it.
type StreamInfo struct {
	Name string `json:"name"`
	// State is "live" while published, "interrupted" while its publisher
	// has dropped and the stream waits for it (webrtc.reconnect_window).
	State string `json:"state"`
	// Interrupted, while State is "interrupted": since when and why.
	Interrupted *Interruption `json:"interrupted,omitempty"`
	// Resumes counts the reconnects that continued this stream.
	Resumes int         `json:"resumes"`
	Started time.Time   `json:"started"`
	Uptime  float64     `json:"uptime_seconds"`
	Tracks  []TrackInfo `json:"tracks"`
	// BitrateIn is the payload rate in bit/s over the last second or more
	// (the average since the start on the first request).
	BitrateIn float64 `json:"bitrate_in"`
	FramesIn  uint64  `json:"frames_in"`
	BytesIn   uint64  `json:"bytes_in"`
	// Readers are the consumers attached to the stream (one transmuxer,
	// restreams); ReadersDropped counts those dropped for falling behind.
	Readers        int    `json:"readers"`
	ReadersDropped uint64 `json:"readers_dropped"`
	// Ingest are the publisher's RTP receive counters (packet loss, PLIs,
	// keyframe interval), when the stream comes from WebRTC ingest.
	Ingest *IngestInfo `json:"ingest,omitempty"`
	// Recording is the recording in progress, if any.
	Recording *recorder.Active `json:"recording,omitempty"`
	// Origin is the stream's publish to storage for a CDN, if a rule
	// publishes it (state starting, live, retrying).
	Origin *origin.Active `json:"origin,omitempty"`
	// Outputs are the stream's outputs (restreams).
	Outputs []OutputStatus `json:"outputs"`
	// Playback URLs, relative to the gateway.
	HLS  string `json:"hls"`
	DASH string `json:"dash"`
}

// Interruption is why and since when a stream waits for its publisher.
type Interruption struct {
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
}

// IngestInfo is what the gateway measures of a WebRTC publisher.
type IngestInfo struct {
	RTPPackets uint64 `json:"rtp_packets"`
	// PacketsMissing are the packets found missing on arrival (lost before
	// repair); PacketsLost those still missing when their wait ran out
	// (lost after repair); PacketsRepaired the holes filled in time.
	PacketsMissing  uint64 `json:"packets_missing"`
	PacketsLost     uint64 `json:"packets_lost"`
	PacketsRepaired uint64 `json:"packets_repaired"`
	// LossPercent is PacketsLost over all packets expected, in percent.
	LossPercent float64 `json:"loss_percent"`
	// Retransmissions are the RTX packets received; PacketsLate the
	// packets that came after their hole was given up, and duplicates.
	Retransmissions uint64 `json:"retransmissions"`
	PacketsLate     uint64 `json:"packets_late"`
	// NACKs are the sequence numbers requested (each retry counts).
	NACKs       uint64  `json:"nacks_sent"`
	NACKPackets uint64  `json:"nack_packets_sent"`
	RTT         float64 `json:"rtt_seconds"`
	// FramesDropped are the video frames not passed on after a loss;
	// FreezeSeconds the time without video they made.
	FramesDropped    uint64  `json:"frames_dropped"`
	FreezeSeconds    float64 `json:"freeze_seconds"`
	PLIs             uint64  `json:"plis_sent"`
	KeyframeInterval float64 `json:"keyframe_interval_seconds"`
}

// TrackInfo is one track of a stream.
type TrackInfo struct {
	Kind      string `json:"kind"`
	Codec     string `json:"codec"`
	ClockRate uint32 `json:"clock_rate"`
	Channels  int    `json:"channels,omitempty"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
}

func (a *API) streamInfo(s *media.Stream, now time.Time) StreamInfo {
	frames, bytes := s.Stats()
	si := StreamInfo{
		Name: s.Name, State: media.StateLive.String(), Started: s.Started.UTC(), Resumes: s.Resumes(),
		Uptime:    now.Sub(s.Started).Seconds(),
		BitrateIn: a.rates.bitrate(s, now), FramesIn: frames, BytesIn: bytes,
		Readers: s.Readers(), ReadersDropped: s.Dropped(),
		Outputs: []OutputStatus{},
		HLS:     "/hls/" + s.Name + "/index.m3u8",
		DASH:    "/dash/" + s.Name + "/manifest.mpd",
	}
	if st, since, reason := s.State(); st != media.StateLive {
		si.State = st.String()
		if st == media.StateInterrupted {
			si.Interrupted = &Interruption{Since: since.UTC(), Reason: reason}
		}
	}
	for _, t := range s.Tracks {
		ti := TrackInfo{Kind: t.Kind.String(), Codec: t.Codec.String(), ClockRate: t.ClockRate, Channels: t.Channels}
		if c := s.LastConfig(t); c != nil {
			ti.Width, ti.Height = c.Width, c.Height
		}
		si.Tracks = append(si.Tracks, ti)
	}
	if a.opt.Ingest != nil {
		if st, ok := a.opt.Ingest(s.Name); ok {
			info := IngestInfo{RTPPackets: st.RTPPackets,
				PacketsMissing: st.PacketsMissing, PacketsLost: st.PacketsLost, PacketsRepaired: st.PacketsRepaired,
				Retransmissions: st.Retransmissions, PacketsLate: st.PacketsLate,
				NACKs: st.NACKs, NACKPackets: st.NACKPackets, RTT: st.RTT.Seconds(),
				FramesDropped: st.FramesDropped, FreezeSeconds: st.FreezeTime.Seconds(),
				PLIs: st.PLIs, KeyframeInterval: st.KeyframeInterval.Seconds()}
			if n := st.RTPPackets + st.PacketsLost; n > 0 {
				info.LossPercent = 100 * float64(st.PacketsLost) / float64(n)
			}
			si.Ingest = &info
		}
	}
	if a.opt.Recorder != nil {
		if act, ok := a.opt.Recorder.Recording(s.Name); ok {
			si.Recording = &act
		}
	}
	if a.opt.Origin != nil {
		if act, ok := a.opt.Origin.Publishing(s.Name); ok {
			si.Origin = &act
		}
	}
	if a.opt.Outputs != nil {
		if outs := a.opt.Outputs.List(s.Name); outs != nil {
			si.Outputs = outs
		}
	}
	return si
}

func (a *API) listStreams(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	now := time.Now()
	ss := a.opt.Streams.List()
	sort.Slice(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
	out := make([]StreamInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, a.streamInfo(s, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"streams": out})
}

// liveStream finds the stream of a route, answering 400/404 itself.
func (a *API) liveStream(w http.ResponseWriter, name string) (*media.Stream, bool) {
	if err := media.ValidateName(name); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_stream_name", err.Error()})
		return nil, false
	}
	s, ok := a.opt.Streams.Get(name)
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, "stream_not_found", "stream " + name + " is not live"})
		return nil, false
	}
	return s, true
}

func (a *API) getStream(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	s, ok := a.liveStream(w, v["stream"])
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, a.streamInfo(s, time.Now()))
}

func (a *API) getRecording(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Recorder == nil {
		writeError(w, notImplemented("recording"))
		return
	}
	act, ok := a.opt.Recorder.Recording(v["stream"])
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, "not_recording", "stream is not being recorded"})
		return
	}
	writeJSON(w, http.StatusOK, act)
}

func (a *API) startRecording(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Recorder == nil {
		writeError(w, notImplemented("recording"))
		return
	}
	act, err := a.opt.Recorder.Start(v["stream"])
	switch {
	case err == nil:
		writeJSON(w, http.StatusCreated, act)
	case errors.Is(err, recorder.ErrNotLive):
		writeError(w, &apiError{http.StatusNotFound, "stream_not_found", err.Error()})
	case errors.Is(err, recorder.ErrRecording):
		writeError(w, &apiError{http.StatusConflict, "already_recording", err.Error()})
	case errors.Is(err, recorder.ErrTooSoon):
		writeError(w, &apiError{http.StatusConflict, "too_soon", err.Error()})
	default:
		a.log.Error("api: recording not started", "stream", v["stream"], "err", err)
		writeError(w, &apiError{http.StatusInternalServerError, "internal", err.Error()})
	}
}

func (a *API) stopRecording(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Recorder == nil {
		writeError(w, notImplemented("recording"))
		return
	}
	act, err := a.opt.Recorder.Stop(v["stream"])
	if err != nil {
		writeError(w, &apiError{http.StatusNotFound, "not_recording", err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, act)
}
