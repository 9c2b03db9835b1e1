package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/internal/admission"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/outputs/origin"
	"github.com/whipcast/whipcast/outputs/recorder"
	"github.com/whipcast/whipcast/storage"
)

// Streams is where the API finds live streams; *media.Registry is one.
type Streams interface {
	List() []*media.Stream
	Get(name string) (*media.Stream, bool)
}

// Recorder starts and stops recordings of live streams;
// *recorder.Recorder is one.
type Recorder interface {
	Start(stream string) (recorder.Active, error)
	Stop(stream string) (recorder.Active, error)
	Recording(stream string) (recorder.Active, bool)
}

// Origin publishes streams to storage for a CDN; *origin.Origin is one.
type Origin interface {
	Publishing(stream string) (origin.Active, bool)
}

// OutputSpec asks for a new output of a live stream (POST
// /v1/streams/{stream}/outputs).
type OutputSpec struct {
	// Kind is the output type, e.g. "rtmp".
	Kind string `json:"kind"`
	// URL is the destination, e.g. rtmp://live.example.com/app/KEY.
	URL string `json:"url"`
	// Enhanced sends Opus as E-RTMP audio instead of transcoding to AAC.
	Enhanced bool `json:"enhanced,omitempty"`
	// MaxRetries: failed reconnects in a row before state "failed";
	// 0 (default) retries while the stream is live.
	MaxRetries int `json:"max_retries,omitempty"`
}

// OutputStatus is one output of a stream as the API shows it.
type OutputStatus struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// URL is the destination with its secret parts (stream key, password)
	// redacted.
	URL string `json:"url"`
	// Enhanced is true for an E-RTMP destination.
	Enhanced bool `json:"enhanced,omitempty"`
	// State is starting, live, retrying, failed or stopped.
	State string `json:"state"`
	// Error is the last error in words.
	Error string `json:"error,omitempty"`
	// Since is when State last changed.
	Since time.Time `json:"since"`
}

// Outputs lists, adds and removes the outputs (RTMP restreams, …) of live
// streams. The gateway implements it once an output type exists; until
// then the API lists none and answers 501 to Add and Remove.
type Outputs interface {
	List(stream string) []OutputStatus
	Add(stream string, spec OutputSpec) (OutputStatus, error)
	Remove(stream, id string) error
}

// APIOptions are what the REST API reads and controls. Nil fields turn
// their routes into 501 not_implemented (or empty lists).
type APIOptions struct {
	// Streams are the live streams. Required.
	Streams Streams
	// Recorder starts and stops recordings.
	Recorder Recorder
	// Origin is the publish to storage for a CDN (nil: none configured).
	Origin Origin
	// Store is where finished recordings are (GET /v1/recordings).
	Store storage.Store
	// StorePrefix is the key prefix of recordings in Store ("" for none).
	StorePrefix string
	// Outputs manages stream outputs.
	Outputs Outputs
	// Ingest returns a live stream's WebRTC receive counters.
	Ingest func(stream string) (ingest.Stats, bool)
	// Rooms serves /v1/rooms (api_rooms.go).
	Rooms Rooms
	// RoomMedia makes the WebRTC sessions of the room socket
	// (/v1/rooms/{room}/ws, roomsocket.go). Nil: that route is 501.
	RoomMedia RoomMedia
	// Filters serves /v1/streams/{stream}/filters (api_stages.go).
	Filters StreamFilters
	// Motion serves /v1/streams/{stream}/motion (api_stages.go).
	Motion StreamMotion
	// Composites serves /v1/rooms/{room}/composite (api_composite.go).
	Composites Composites
	// Limits is GET /v1/limits: the admission state (api_limits.go).
	Limits func() admission.State
	// Events feeds GET /v1/events.
	Events *Bus
	// Auth guards every /v1 route (Auth.Admin).
	Auth *Auth
	// Logger logs API errors. Default: discard.
	Logger *slog.Logger
}

// API is the REST API under /v1 (docs/api.md, GET /v1/openapi.json).
type API struct {
	opt    APIOptions
	log    *slog.Logger
	routes []route
	rates  rateMeter
}

// route is one API operation: method and OpenAPI path template. A
// {stream} or {key} variable takes one or more "/"-separated segments
// (stream names and storage keys contain "/"), {id} exactly one.
type route struct {
	method, path string
	handle       func(w http.ResponseWriter, r *http.Request, vars map[string]string)
}

// NewAPI makes the API handler; mount it at /v1/ without stripping.
func NewAPI(opt APIOptions) *API {
	a := &API{opt: opt, log: opt.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.opt.Auth == nil {
		a.opt.Auth = &Auth{}
	}
	a.routes = []route{
		{"GET", "/v1/openapi.json", a.openAPI},
		{"GET", "/v1/events", a.events},
		{"GET", "/v1/limits", a.getLimits},
		{"GET", "/v1/streams", a.listStreams},
		{"GET", "/v1/streams/{stream}/recording", a.getRecording},
		{"POST", "/v1/streams/{stream}/recording", a.startRecording},
		{"DELETE", "/v1/streams/{stream}/recording", a.stopRecording},
		{"GET", "/v1/streams/{stream}/outputs", a.listOutputs},
		{"POST", "/v1/streams/{stream}/outputs", a.addOutput},
		{"DELETE", "/v1/streams/{stream}/outputs/{id}", a.removeOutput},
		{"GET", "/v1/streams/{stream}/filters", a.getFilters},
		{"PUT", "/v1/streams/{stream}/filters", a.putFilters},
		{"DELETE", "/v1/streams/{stream}/filters", a.deleteFilters},
		{"GET", "/v1/streams/{stream}/motion", a.getMotion},
		{"PUT", "/v1/streams/{stream}/motion", a.putMotion},
		{"DELETE", "/v1/streams/{stream}/motion", a.deleteMotion},
		{"GET", "/v1/streams/{stream}", a.getStream},
		{"GET", "/v1/recordings", a.listRecordings},
		{"GET", "/v1/recordings/{key}", a.getRecordingObject},
		{"GET", "/v1/rooms", a.listRooms},
		{"POST", "/v1/rooms", a.createRoom},
		{"GET", "/v1/rooms/{room}", a.getRoom},
		{"DELETE", "/v1/rooms/{room}", a.deleteRoom},
		{"GET", roomSocketPath, a.roomSocket},
		{"GET", "/v1/rooms/{room}/composite", a.getComposite},
		{"POST", "/v1/rooms/{room}/composite", a.startComposite},
		{"DELETE", "/v1/rooms/{room}/composite", a.stopComposite},
	}
	return a
}

// Routes lists the API's operations as "METHOD /path/{var}" (the OpenAPI
// document must name each).
func (a *API) Routes() []string {
	out := make([]string, len(a.routes))
	for i, rt := range a.routes {
		out[i] = rt.method + " " + rt.path
	}
	return out
}

// ServeHTTP authenticates, then dispatches on the first matching route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Access-Control-Allow-Origin", "*")
	// The room socket takes a participant's publish credential, not the
	// admin token.
	if vars, ok := matchPath(roomSocketPath, r.URL.Path); ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		a.roomSocket(w, r, vars)
		return
	}
	if e := a.opt.Auth.admin(r); e != nil {
		if e.status == http.StatusUnauthorized {
			h.Set("WWW-Authenticate", `Bearer realm="whipcast"`)
		}
		writeError(w, e)
		return
	}
	var allow []string
	for _, rt := range a.routes {
		vars, ok := matchPath(rt.path, r.URL.Path)
		if !ok {
			continue
		}
		if rt.method != r.Method && !(rt.method == "GET" && r.Method == http.MethodHead) {
			allow = append(allow, rt.method)
			continue
		}
		rt.handle(w, r, vars)
		return
	}
	if len(allow) > 0 {
		h.Set("Allow", strings.Join(allow, ", "))
		writeError(w, &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"})
		return
	}
	writeError(w, &apiError{http.StatusNotFound, "not_found", "no such route"})
}

// matchPath matches a path against a template. Multi-segment variables
// ({stream}, {key}) match greedily from the left literal segments to the
// right ones, so /v1/streams/a/b/recording is stream "a/b" with the
// /recording suffix; a stream whose last segment is "recording" or
// "outputs" can only be reached through the list.
func matchPath(tmpl, path string) (map[string]string, bool) {
	ts := strings.Split(strings.Trim(tmpl, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	if strings.HasSuffix(path, "/") && path != "/" {
		return nil, false
	}
	multi := -1
	for i, s := range ts {
		if s == "{stream}" || s == "{key}" {
			multi = i
		}
	}
	vars := map[string]string{}
	seg := func(t, p string) bool {
		if strings.HasPrefix(t, "{") {
			if p == "" {
				return false
			}
			vars[strings.Trim(t, "{}")] = p
			return true
		}
		return t == p
	}
	if multi < 0 {
		if len(ts) != len(ps) {
			return nil, false
		}
		for i := range ts {
			if !seg(ts[i], ps[i]) {
				return nil, false
			}
		}
		return vars, true
	}
	after := len(ts) - multi - 1
	if len(ps) < multi+1+after {
		return nil, false
	}
	for i := 0; i < multi; i++ {
		if !seg(ts[i], ps[i]) {
			return nil, false
		}
	}
	for i := 0; i < after; i++ {
		if !seg(ts[len(ts)-1-i], ps[len(ps)-1-i]) {
			return nil, false
		}
	}
	mid := ps[multi : len(ps)-after]
	for _, s := range mid {
		if s == "" {
			return nil, false
		}
	}
	vars[strings.Trim(ts[multi], "{}")] = strings.Join(mid, "/")
	return vars, true
}

// apiError is an error answer: {"error": message, "code": code}.
type apiError struct {
	status  int
	code    string
	message string
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]string{"error": e.message, "code": e.code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func notImplemented(what string) *apiError {
	return &apiError{http.StatusNotImplemented, "not_implemented", what + " is not available on this gateway"}
}

// rateMeter turns each stream's byte counter into a bitrate: the rate over
// the interval since the previous sample at least a second old, else the
// average since the publish began.
type rateMeter struct {
	mu      sync.Mutex
	samples map[*media.Stream]rateSample
}

type rateSample struct {
	t     time.Time
	bytes uint64
	bps   float64
}

func (m *rateMeter) bitrate(s *media.Stream, now time.Time) float64 {
	_, bytes := s.Stats()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.samples == nil {
		m.samples = map[*media.Stream]rateSample{}
	}
	// Forget ended streams.
	for k := range m.samples {
		select {
		case <-k.Done():
			delete(m.samples, k)
		default:
		}
	}
	prev, ok := m.samples[s]
	if !ok {
		bps := 0.0
		if up := now.Sub(s.Started).Seconds(); up > 0 {
			bps = float64(bytes) * 8 / up
		}
		m.samples[s] = rateSample{t: now, bytes: bytes, bps: bps}
		return bps
	}
	if dt := now.Sub(prev.t).Seconds(); dt >= 1 {
		prev = rateSample{t: now, bytes: bytes, bps: float64(bytes-prev.bytes) * 8 / dt}
		m.samples[s] = prev
	}
	return prev.bps
}
