package packager

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// Defaults of DASHSettings.
const (
	DefaultDASHWindow        = 7
	DefaultDASHEndGrace      = 30 * time.Second
	DefaultDASHTargetLatency = 2500 * time.Millisecond
	DefaultDASHTimePath      = "/time"
)

// DASHSettings configure the DASH packager. Zero fields mean their default;
// NewDASH keeps its own copy and never writes into the caller's.
type DASHSettings struct {
	// Window is how many complete segments each Representation lists and
	// memory keeps (the time-shift buffer). Default 7.
	Window int
	// EndGrace is how long an ended stream's MPD (now static) stays served,
	// and how long a new publish of the same name continues it with a new
	// Period. Default 30 s.
	EndGrace time.Duration
	// DisableLowLatency turns off the DASH-IF low-latency profile: no
	// availabilityTimeOffset, no announcement of the segment in production
	// and no chunked delivery of it. Default false (low latency on).
	DisableLowLatency bool
	// TargetLatency is the ServiceDescription Latency@target players aim
	// for (DASH-IF IOP low-latency 9.X.4.2). Default 2.5 s.
	TargetLatency time.Duration
	// TimePath is the gateway path of the clock players sync to (UTCTiming,
	// ISO/IEC 23009-1 5.8.5.7, urn:mpeg:dash:utc:http-iso:2014). The MPD
	// names it with the scheme and host of the MPD request. Default "/time".
	TimePath string
	// BlockTimeout bounds how long a request for a segment in production
	// waits for its next chunk. Default three segment targets.
	BlockTimeout time.Duration
	// StartTimeout bounds how long an MPD request waits for the first
	// complete segment of a stream whose packaging just started
	// (transmux.Service.Watch). Default 10 s.
	StartTimeout time.Duration

	tm transmux.Settings
}

func (s DASHSettings) withDefaults(tm transmux.Settings) DASHSettings {
	s.tm = tm.WithDefaults()
	if s.Window <= 0 {
		s.Window = DefaultDASHWindow
	}
	if s.EndGrace <= 0 {
		s.EndGrace = DefaultDASHEndGrace
	}
	if s.TargetLatency <= 0 {
		s.TargetLatency = DefaultDASHTargetLatency
	}
	if s.TimePath == "" {
		s.TimePath = DefaultDASHTimePath
	}
	if s.BlockTimeout <= 0 {
		s.BlockTimeout = 3 * s.tm.SegmentTarget
	}
	if s.StartTimeout <= 0 {
		s.StartTimeout = max(DefaultStartTimeout, s.BlockTimeout)
	}
	return s
}

// DASH packages every published stream as live MPEG-DASH (ISO/IEC 23009-1,
// CMAF, DASH-IF low-latency) over the CMAF fragments of a transmux.Service,
// the very bytes HLS serves. Mount it with the prefix stripped, e.g.
// http.StripPrefix("/dash/", d); it serves "{stream}/manifest.mpd" and the
// files that MPD names.
type DASH struct {
	user DASHSettings
	set  DASHSettings
	log  *slog.Logger

	now func() time.Time // the clock; tests replace it

	registry[*dashStream]
}

// NewDASH makes a DASH packager. logger may be nil (logs are discarded).
func NewDASH(s DASHSettings, logger *slog.Logger) *DASH {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &DASH{user: s, set: s.withDefaults(transmux.Settings{}), log: logger, now: time.Now}
	d.init()
	return d
}

// Attach packages every stream that sv transmuxes from now on as a second
// consumer beside HLS: one init per track and one set of fragments for both.
// Every request for a live stream is a player's demand on sv
// (Service.Watch), as with HLS. Call it once, before streams are published.
func (d *DASH) Attach(sv *transmux.Service) {
	d.attach(sv, func(tm transmux.Settings) { d.set = d.user.withDefaults(tm) }, d.publish)
}

// publish returns the sink of a new publish. A name whose previous publish
// ended less than EndGrace ago continues that MPD with a new Period
// (ISO/IEC 23009-1 5.3.2), so players keep their session.
func (d *DASH) publish(s *media.Stream) transmux.Sink {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	epoch := d.newEpoch()
	want := carried(s)
	st := d.streams[s.Name]
	if st != nil {
		d.stopRemovalLocked(st) // taken over, or replaced
	}
	if st == nil || !st.restart(epoch, want) {
		st = newDASHStream(d, s.Name, epoch, want)
		d.streams[s.Name] = st
	}
	return &dashSink{s: st, epoch: epoch}
}

// Close ends waiting requests and drops every stream's state. Safe to call
// more than once.
func (d *DASH) Close() { d.close() }

// ServeHTTP serves the MPD, init segments and media segments. Only GET and
// HEAD are allowed; anything unknown is 404.
func (d *DASH) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	req, err := parseDASHRequest(r.URL.Path)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	st, done, ok := d.request(w, r, req.stream)
	if !ok {
		return
	}
	defer done()
	switch req.file {
	case dashManifest:
		st.serveMPD(w, r)
	case dashInit:
		st.serveInit(w, r, &req)
	default:
		st.serveSegment(w, r, &req)
	}
}
