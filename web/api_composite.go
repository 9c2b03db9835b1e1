package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/whipcast/whipcast/rooms"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/stages/composite"
)

// Composites starts, describes and stops rooms' composites. Settings fields
// left zero take the configured defaults (rooms.composite).
type Composites interface {
	Start(ctx context.Context, room string, s composite.Settings) (composite.Info, error)
	Get(room string) (composite.Info, error)
	Stop(room string) error
}

func compositeError(w http.ResponseWriter, err error) {
	e := &apiError{http.StatusInternalServerError, "internal", err.Error()}
	switch {
	case errors.Is(err, rooms.ErrNotFound):
		e.status, e.code = http.StatusNotFound, "room_not_found"
	case errors.Is(err, composite.ErrNotFound):
		e.status, e.code = http.StatusNotFound, "composite_not_found"
	case errors.Is(err, composite.ErrExists):
		e.status, e.code = http.StatusConflict, "composite_exists"
	case errors.Is(err, composite.ErrTooMany):
		e.status, e.code = http.StatusConflict, "composite_limit"
	case errors.Is(err, composite.ErrBadSettings):
		e.status, e.code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, codec.ErrNoCodecs):
		e.status, e.code = http.StatusNotImplemented, "not_implemented"
	}
	writeError(w, e)
}

// decodeComposite reads a composite.Settings body; an empty body means all
// defaults.
func decodeComposite(r io.Reader) (composite.Settings, error) {
	var s composite.Settings
	b, err := io.ReadAll(io.LimitReader(r, 16<<10))
	if err != nil || len(b) == 0 {
		return s, err
	}
	if err := strictJSON(b, &s); err != nil {
		return s, err
	}
	return s, nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func (a *API) getComposite(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if a.opt.Composites == nil {
		compositeError(w, composite.ErrNotFound)
		return
	}
	in, err := a.opt.Composites.Get(v["room"])
	if err != nil {
		compositeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (a *API) startComposite(w http.ResponseWriter, r *http.Request, v map[string]string) {
	if a.opt.Composites == nil {
		writeError(w, notImplemented("composites"))
		return
	}
	s, err := decodeComposite(r.Body)
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_request", "body: " + err.Error()})
		return
	}
	in, err := a.opt.Composites.Start(r.Context(), v["room"], s)
	if err != nil {
		compositeError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/rooms/"+v["room"]+"/composite")
	writeJSON(w, http.StatusCreated, in)
}

func (a *API) stopComposite(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if a.opt.Composites == nil {
		compositeError(w, composite.ErrNotFound)
		return
	}
	if err := a.opt.Composites.Stop(v["room"]); err != nil {
		compositeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
