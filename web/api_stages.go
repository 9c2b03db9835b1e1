package web

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// Errors the StreamFilters and StreamMotion implementations wrap, so the
// API answers with the right status.
var (
	// ErrStreamNotLive: the stream ended (or never was) (404).
	ErrStreamNotLive = errors.New("stream is not live")
	// ErrBadSpec: the body does not decode or validate (400); the message
	// names the bad entry.
	ErrBadSpec = errors.New("bad request")
	// ErrFilterLimit: filters.max_stages stages already run (409).
	ErrFilterLimit = errors.New("filter limit reached")
	// ErrUnfit: valid, but not for this stream, e.g. a crop larger than
	// the picture or a stream without H.264 video (422).
	ErrUnfit = errors.New("does not fit the stream")
	// ErrNotRunning: no filter stage or detector runs on the stream (404).
	ErrNotRunning = errors.New("not running")
)

// FilterStatus is the filter stage of a stream as the API shows it.
type FilterStatus struct {
	Stream string `json:"stream"`
	// Output is the filtered stream's name, {stream}/filtered.
	Output string `json:"output"`
	// Filters is the chain, each entry as PUT takes it ({"rotate": 90}).
	Filters any `json:"filters"`
	// Source is "config" (a streams[].filters rule) or "api".
	Source  string    `json:"source"`
	Started time.Time `json:"started"`
}

// StreamFilters starts, replaces and stops the filter stages of live
// streams (GET/PUT/DELETE /v1/streams/{stream}/filters); the gateway
// implements it.
type StreamFilters interface {
	// Filters returns the stage running on stream, if any.
	Filters(stream string) (FilterStatus, bool)
	// SetFilters starts the chain in body (a JSON array of filter entries)
	// on stream, replacing (stopping, then starting) a running one.
	SetFilters(stream string, body []byte) (FilterStatus, error)
	// StopFilters stops the stream's stage; ErrNotRunning when none runs.
	StopFilters(stream string) error
}

// MotionRegion is the region a detector watches, in fractions of the
// picture.
type MotionRegion struct {
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

// WebhookStatus is a motion webhook as the API shows it: the URL without
// its query or credentials (they may hold tokens), never the secret.
type WebhookStatus struct {
	URL string `json:"url"`
	// Signed is true when a webhook_secret signs the requests.
	Signed    bool   `json:"signed"`
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	Dropped   uint64 `json:"dropped"`
}

// MotionStatus is the motion detector of a stream as the API shows it.
type MotionStatus struct {
	Stream      string       `json:"stream"`
	Sensitivity float64      `json:"sensitivity"`
	Region      MotionRegion `json:"region"`
	// StopAfter is a duration like "2s".
	StopAfter string         `json:"stop_after"`
	Webhook   *WebhookStatus `json:"webhook,omitempty"`
	// Source is "config" (a streams[].motion rule) or "api".
	Source  string    `json:"source"`
	Started time.Time `json:"started"`
}

// StreamMotion starts, replaces and stops the motion detectors of live
// streams (GET/PUT/DELETE /v1/streams/{stream}/motion); the gateway
// implements it.
type StreamMotion interface {
	Motion(stream string) (MotionStatus, bool)
	// SetMotion starts detection with the settings in body (a JSON object
	// shaped like streams[].motion), replacing a running detector.
	SetMotion(stream string, body []byte) (MotionStatus, error)
	StopMotion(stream string) error
}

// maxStageBody bounds a PUT body of filters or motion.
const maxStageBody = 64 << 10

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxStageBody+1))
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_request", "body: " + err.Error()})
		return nil, false
	}
	if len(b) > maxStageBody {
		writeError(w, &apiError{http.StatusRequestEntityTooLarge, "bad_request", "body: larger than 64 KiB"})
		return nil, false
	}
	return b, true
}

// stageError answers an error of StreamFilters or StreamMotion; what is
// "filter" or "motion" and prefixes the codes.
func (a *API) stageError(w http.ResponseWriter, what, stream string, err error) {
	e := &apiError{http.StatusInternalServerError, "internal", err.Error()}
	switch {
	case errors.Is(err, ErrStreamNotLive):
		e = &apiError{http.StatusNotFound, "stream_not_found", "stream " + stream + " is not live"}
	case errors.Is(err, ErrBadSpec):
		e = &apiError{http.StatusBadRequest, "bad_" + what, err.Error()}
	case errors.Is(err, ErrFilterLimit):
		e = &apiError{http.StatusConflict, what + "_limit", err.Error()}
	case errors.Is(err, ErrUnfit):
		e = &apiError{http.StatusUnprocessableEntity, what + "_unfit", err.Error()}
	case errors.Is(err, ErrNotRunning):
		e = &apiError{http.StatusNotFound, "no_" + what, err.Error()}
	default:
		a.log.Error("api: "+what, "stream", stream, "err", err)
	}
	writeError(w, e)
}

func (a *API) getFilters(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Filters == nil {
		writeError(w, notImplemented("filters"))
		return
	}
	st, ok := a.opt.Filters.Filters(v["stream"])
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, "no_filter", "no filters run on stream " + v["stream"]})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) putFilters(w http.ResponseWriter, r *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Filters == nil {
		writeError(w, notImplemented("filters"))
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	st, err := a.opt.Filters.SetFilters(v["stream"], body)
	if err != nil {
		a.stageError(w, "filter", v["stream"], err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) deleteFilters(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Filters == nil {
		writeError(w, notImplemented("filters"))
		return
	}
	if err := a.opt.Filters.StopFilters(v["stream"]); err != nil {
		a.stageError(w, "filter", v["stream"], err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) getMotion(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Motion == nil {
		writeError(w, notImplemented("motion"))
		return
	}
	st, ok := a.opt.Motion.Motion(v["stream"])
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, "no_motion", "no motion detection runs on stream " + v["stream"]})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) putMotion(w http.ResponseWriter, r *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Motion == nil {
		writeError(w, notImplemented("motion"))
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	st, err := a.opt.Motion.SetMotion(v["stream"], body)
	if err != nil {
		a.stageError(w, "motion", v["stream"], err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) deleteMotion(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Motion == nil {
		writeError(w, notImplemented("motion"))
		return
	}
	if err := a.opt.Motion.StopMotion(v["stream"]); err != nil {
		a.stageError(w, "motion", v["stream"], err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
