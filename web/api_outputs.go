package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// ErrNoOutput is what Outputs.Remove returns for an unknown id (404).
var ErrNoOutput = errors.New("no such output")

// ErrBadOutput wraps what Outputs.Add refuses (400).
var ErrBadOutput = errors.New("bad output")

func (a *API) listOutputs(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	outs := []OutputStatus{}
	if a.opt.Outputs != nil {
		if l := a.opt.Outputs.List(v["stream"]); l != nil {
			outs = l
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"outputs": outs})
}

func (a *API) addOutput(w http.ResponseWriter, r *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Outputs == nil {
		writeError(w, notImplemented("outputs"))
		return
	}
	var spec OutputSpec
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "bad_request", "body: " + err.Error()})
		return
	}
	st, err := a.opt.Outputs.Add(v["stream"], spec)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrBadOutput) {
			code = http.StatusBadRequest
		}
		writeError(w, &apiError{code, "output_refused", err.Error()})
		return
	}
	writeJSON(w, http.StatusCreated, st)
}

func (a *API) removeOutput(w http.ResponseWriter, _ *http.Request, v map[string]string) {
	if _, ok := a.liveStream(w, v["stream"]); !ok {
		return
	}
	if a.opt.Outputs == nil {
		writeError(w, notImplemented("outputs"))
		return
	}
	if err := a.opt.Outputs.Remove(v["stream"], v["id"]); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNoOutput) {
			code = http.StatusNotFound
		}
		writeError(w, &apiError{code, "output_not_found", err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
