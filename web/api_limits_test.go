package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/whipcast/whipcast/internal/admission"
)

func TestAPILimits(t *testing.T) {
	get := func(api *API) (int, admission.State) {
		r := httptest.NewRequest("GET", "/v1/limits", nil)
		r.RemoteAddr = "127.0.0.1:1"
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		var st admission.State
		_ = json.Unmarshal(w.Body.Bytes(), &st)
		return w.Code, st
	}
	if code, _ := get(NewAPI(APIOptions{Streams: fakeStreams{}})); code != http.StatusNotImplemented {
		t.Fatalf("no admission control: %d, want 501", code)
	}
	want := admission.State{Reason: admission.ReasonCPU, Detail: "cpu 93% of 2 cores >= limits.max_cpu 90%", Publishers: 7,
		MaxPublishers: 100, CPU: 0.93, Cores: 2, MaxCPU: 0.9, Refused: map[string]uint64{"cpu": 3}}
	code, got := get(NewAPI(APIOptions{Streams: fakeStreams{}, Limits: func() admission.State { return want }}))
	if code != http.StatusOK || got.Detail != want.Detail || got.Publishers != 7 || got.Admitting || got.Refused["cpu"] != 3 {
		t.Fatalf("GET /v1/limits: %d %+v", code, got)
	}
}
