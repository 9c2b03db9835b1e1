package web

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/whipcast/whipcast/media"
)

// fakeStages answers as the gateway would, from the body it is given.
type fakeStages struct{ running map[string]bool }

func (f *fakeStages) Filters(stream string) (FilterStatus, bool) {
	return FilterStatus{Stream: stream, Output: stream + "/filtered", Filters: []any{map[string]int{"rotate": 90}}}, f.running[stream]
}

func (f *fakeStages) SetFilters(stream string, body []byte) (FilterStatus, error) {
	switch string(body) {
	case "bad":
		return FilterStatus{}, fmt.Errorf("%w: filters[0].rotate: 45 is not 90, 180 or 270", ErrBadSpec)
	case "full":
		return FilterStatus{}, fmt.Errorf("%w: 8 streams are filtered", ErrFilterLimit)
	case "unfit":
		return FilterStatus{}, fmt.Errorf("%w: crop", ErrUnfit)
	case "gone":
		return FilterStatus{}, ErrStreamNotLive
	case "boom":
		return FilterStatus{}, fmt.Errorf("encoder broke")
	}
	f.running[stream] = true
	st, _ := f.Filters(stream)
	return st, nil
}

func (f *fakeStages) StopFilters(stream string) error {
	if !f.running[stream] {
		return fmt.Errorf("%w: none", ErrNotRunning)
	}
	delete(f.running, stream)
	return nil
}

func (f *fakeStages) Motion(stream string) (MotionStatus, bool) {
	return MotionStatus{Stream: stream, Webhook: &WebhookStatus{URL: "https://h/x?****", Signed: true}}, f.running["m:"+stream]
}

func (f *fakeStages) SetMotion(stream string, body []byte) (MotionStatus, error) {
	if string(body) == "bad" {
		return MotionStatus{}, fmt.Errorf("%w: sensitivity: 2 is out of range 0-1", ErrBadSpec)
	}
	f.running["m:"+stream] = true
	st, _ := f.Motion(stream)
	return st, nil
}

func (f *fakeStages) StopMotion(stream string) error {
	if !f.running["m:"+stream] {
		return fmt.Errorf("%w: none", ErrNotRunning)
	}
	delete(f.running, "m:"+stream)
	return nil
}

// TestAPIStages: the filters and motion routes, their status codes and
// error codes, on a stream whose name has a "/".
func TestAPIStages(t *testing.T) {
	s := media.NewStream("studio/main", []*media.Track{{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}}, nil)
	f := &fakeStages{running: map[string]bool{}}
	api := NewAPI(APIOptions{Streams: fakeStreams{"studio/main": s}, Filters: f, Motion: f, Auth: &Auth{Admin: "tok"}})
	bare := NewAPI(APIOptions{Streams: fakeStreams{"studio/main": s}})
	do := func(a *API, method, path, body string) (int, map[string]any) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:1"
		if a == api {
			r.Header.Set("Authorization", "Bearer tok")
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}
	for _, tc := range []struct {
		api                *API
		method, path, body string
		status             int
		code               string
	}{
		{api, "GET", "/v1/streams/studio/main/filters", "", 404, "no_filter"},
		{api, "DELETE", "/v1/streams/studio/main/filters", "", 404, "no_filter"},
		{api, "PUT", "/v1/streams/studio/main/filters", "bad", 400, "bad_filter"},
		{api, "PUT", "/v1/streams/studio/main/filters", "full", 409, "filter_limit"},
		{api, "PUT", "/v1/streams/studio/main/filters", "unfit", 422, "filter_unfit"},
		{api, "PUT", "/v1/streams/studio/main/filters", "gone", 404, "stream_not_found"},
		{api, "PUT", "/v1/streams/studio/main/filters", "boom", 500, "internal"},
		{api, "PUT", "/v1/streams/studio/main/filters", strings.Repeat(" ", maxStageBody+1), 413, "bad_request"},
		{api, "PUT", "/v1/streams/nope/filters", "[]", 404, "stream_not_found"},
		{api, "PUT", "/v1/streams/bad%20name/filters", "[]", 400, "bad_stream_name"},
		{api, "POST", "/v1/streams/studio/main/filters", "[]", 405, "method_not_allowed"},
		{api, "PUT", "/v1/streams/studio/main/motion", "bad", 400, "bad_motion"},
		{api, "GET", "/v1/streams/studio/main/motion", "", 404, "no_motion"},
		{api, "DELETE", "/v1/streams/studio/main/motion", "", 404, "no_motion"},
		{bare, "PUT", "/v1/streams/studio/main/filters", "[]", 501, "not_implemented"},
		{bare, "GET", "/v1/streams/studio/main/motion", "", 501, "not_implemented"},
	} {
		code, body := do(tc.api, tc.method, tc.path, tc.body)
		if code != tc.status || body["code"] != tc.code || body["error"] == "" {
			t.Errorf("%s %s %.10q: %d %v, want %d %s", tc.method, tc.path, tc.body, code, body, tc.status, tc.code)
		}
	}
	if _, body := do(api, "PUT", "/v1/streams/studio/main/filters", "bad"); !strings.Contains(body["error"].(string), "filters[0].rotate") {
		t.Errorf("the error does not name the entry: %v", body)
	}
	if code, body := do(api, "PUT", "/v1/streams/studio/main/filters", `[{"rotate":90}]`); code != 200 || body["output"] != "studio/main/filtered" {
		t.Fatalf("PUT: %d %v", code, body)
	}
	if code, body := do(api, "GET", "/v1/streams/studio/main/filters", ""); code != 200 || body["stream"] != "studio/main" {
		t.Fatalf("GET: %d %v", code, body)
	}
	if code, _ := do(api, "DELETE", "/v1/streams/studio/main/filters", ""); code != 204 {
		t.Fatalf("DELETE: %d", code)
	}
	if code, body := do(api, "PUT", "/v1/streams/studio/main/motion", `{}`); code != 200 || body["webhook"].(map[string]any)["signed"] != true {
		t.Fatalf("PUT motion: %d %v", code, body)
	}
	if code, _ := do(api, "DELETE", "/v1/streams/studio/main/motion", ""); code != 204 {
		t.Fatalf("DELETE motion: %d", code)
	}
	// The admin token guards these routes like every /v1 route.
	r := httptest.NewRequest("PUT", "/v1/streams/studio/main/filters", strings.NewReader(`[{"rotate":90}]`))
	r.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	if w.Code != 401 || f.running["studio/main"] {
		t.Fatalf("no token: %d", w.Code)
	}
}
