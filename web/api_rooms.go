package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/whipcast/whipcast/rooms"
	"github.com/whipcast/whipcast/stages/composite"
)

// Rooms creates, lists and deletes rooms, and gives the room socket one
// room's snapshot and events (Watch) and relays mutes; *rooms.Manager is one.
type Rooms interface {
	Create(ctx context.Context, name string, grace time.Duration) (rooms.Info, error)
	List(ctx context.Context) ([]rooms.Info, error)
	Get(ctx context.Context, name string) (rooms.Info, error)
	Delete(ctx context.Context, name string) error
	Watch(ctx context.Context, name string) (rooms.Info, *rooms.Watcher, error)
	Mute(ctx context.Context, name, participant, kind string, muted bool) error
}

var _ Rooms = (*rooms.Manager)(nil)

// roomSpec is the body of POST /v1/rooms. Grace is a duration ("45s") or a
// number of seconds; absent means rooms.grace.
type roomSpec struct {
	Name  string          `json:"name"`
	Grace json.RawMessage `json:"grace,omitempty"`
	// Composite, when present, starts the room's composite with these
	// settings ({} for the defaults) as the room is created.
	Composite *composite.Settings `json:"composite,omitempty"`
}

func (s roomSpec) grace() (time.Duration, error) {
	if len(s.Grace) == 0 || string(s.Grace) == "null" {
		return 0, nil
	}
	var str string
	if json.Unmarshal(s.Grace, &str) == nil {
		d, err := time.ParseDuration(str)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("grace %q is not a positive duration such as \"30s\"", str)
		}
		return d, nil
	}
	var secs float64
	if err := json.Unmarshal(s.Grace, &secs); err != nil || secs <= 0 {
		return 0, errors.New("grace must be a duration such as \"30s\" or a positive number of seconds")
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func roomError(w http.ResponseWriter, err error) {
	e := &apiError{http.StatusInternalServerError, "internal", err.Error()}
	switch {
	case errors.Is(err, rooms.ErrBadName), errors.Is(err, rooms.ErrBadGrace):
		e.status, e.code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, rooms.ErrExists):
		e.status, e.code = http.StatusConflict, "room_exists"
	case errors.Is(err, rooms.ErrTooMany):
		e.status, e.code = http.StatusConflict, "room_limit"
	case errors.Is(err, rooms.ErrNotFound):
		e.status, e.code = http.StatusNotFound, "room_not_found"
	case errors.Is(err, rooms.ErrClosed), errors.Is(err, context.Canceled):
		e.status, e.code = http.StatusServiceUnavailable, "unavailable"
	}
	writeError(w, e)
}

func (a *API) listRooms(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if a.opt.Rooms == nil {
		writeJSON(w, http.StatusOK, map[string]any{"rooms": []rooms.Info{}})
		return
	}
	l, err := a.opt.Rooms.List(r.Context())
	if err != nil {
		roomError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": l})
}

func (a *API) createRoom(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if a.opt.Rooms == nil {
		writeError(w, notImplemented("rooms"))
		return
	}
	var spec roomSpec
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_request", "body: " + err.Error()})
		return
	}
	grace, err := spec.grace()
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_request", err.Error()})
		return
	}
	if spec.Composite != nil && a.opt.Composites == nil {
		writeError(w, notImplemented("composites"))
		return
	}
	in, err := a.opt.Rooms.Create(r.Context(), spec.Name, grace)
	if err != nil {
		roomError(w, err)
		return
	}
	if spec.Composite != nil {
		if _, err := a.opt.Composites.Start(r.Context(), in.Name, *spec.Composite); err != nil {
			// All or nothing: the room is not left behind without the
			// composite that was asked for.
			_ = a.opt.Rooms.Delete(context.WithoutCancel(r.Context()), in.Name)
			compositeError(w, err)
			return
		}
	}
	w.Header().Set("Location", "/v1/rooms/"+in.Name)
	writeJSON(w, http.StatusCreated, in)
}

func (a *API) getRoom(w http.ResponseWriter, r *http.Request, v map[string]string) {
	if a.opt.Rooms == nil {
		roomError(w, rooms.ErrNotFound)
		return
	}
	in, err := a.opt.Rooms.Get(r.Context(), v["room"])
	if err != nil {
		roomError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (a *API) deleteRoom(w http.ResponseWriter, r *http.Request, v map[string]string) {
	if a.opt.Rooms == nil {
		roomError(w, rooms.ErrNotFound)
		return
	}
	if err := a.opt.Rooms.Delete(r.Context(), v["room"]); err != nil {
		roomError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
