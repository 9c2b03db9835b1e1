package web

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/rooms"
)

func TestRoomsAPI(t *testing.T) {
	m := rooms.New(rooms.Settings{Max: 1, Grace: time.Minute})
	defer m.Close()
	a := NewAPI(APIOptions{Streams: fakeStreams{}, Rooms: m, Auth: &Auth{Admin: "adm"}})
	call := func(method, path, body string) (int, map[string]any) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer adm")
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		var v map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &v)
		return w.Code, v
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		check              string // a "key=value" the answer must have
	}{
		{"GET", "/v1/rooms", "", 200, ""},
		{"POST", "/v1/rooms", `{"name": "r1", "grace": 90}`, 201, "grace=1m30s"},
		{"POST", "/v1/rooms", `{"name": "r1"}`, 409, "code=room_exists"},
		{"POST", "/v1/rooms", `{"name": "r2"}`, 409, "code=room_limit"},
		{"POST", "/v1/rooms", `{"name": "r/2"}`, 400, "code=bad_request"},
		{"POST", "/v1/rooms", `{"name": "r2", "grace": "soon"}`, 400, "code=bad_request"},
		{"POST", "/v1/rooms", `{"name": "r2", "grace": -1}`, 400, "code=bad_request"},
		{"POST", "/v1/rooms", `{"name": "r2", "colour": "red"}`, 400, "code=bad_request"},
		{"GET", "/v1/rooms/r1", "", 200, "name=r1"},
		{"GET", "/v1/rooms/nope", "", 404, "code=room_not_found"},
		{"DELETE", "/v1/rooms/r1", "", 204, ""},
		{"DELETE", "/v1/rooms/r1", "", 404, "code=room_not_found"},
		{"POST", "/v1/rooms", `{"name": "r2", "grace": "2s"}`, 201, "grace=2s"},
	} {
		code, v := call(tc.method, tc.path, tc.body)
		if code != tc.code {
			t.Errorf("%s %s %s: %d %v, want %d", tc.method, tc.path, tc.body, code, v, tc.code)
			continue
		}
		if k, want, ok := strings.Cut(tc.check, "="); ok {
			if got, _ := v[k].(string); got != want {
				t.Errorf("%s %s %s: %s=%q, want %q", tc.method, tc.path, tc.body, k, got, want)
			}
		}
	}
	if _, v := call("GET", "/v1/rooms", ""); len(v["rooms"].([]any)) != 1 {
		t.Errorf("list: %v", v)
	}
}
