package wish

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A session resource's life as a WHIP server answers it: 201 with Location
// (relative, resolved against the endpoint) and ETag, a PATCH with
// If-Match and the token, a DELETE; and a refused POST as a StatusError.
func TestResource(t *testing.T) {
	var patched, auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/whip/full":
			http.Error(w, "too many publishers", http.StatusServiceUnavailable)
		case r.Method == http.MethodPost:
			if r.Header.Get("Content-Type") != "application/sdp" {
				http.Error(w, "type", http.StatusUnsupportedMediaType)
				return
			}
			w.Header().Set("Location", "/whip/cam/s1")
			w.Header().Set("ETag", `"e1"`)
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "v=0 answer")
		case r.Method == http.MethodPatch:
			b, _ := io.ReadAll(r.Body)
			patched = r.Header.Get("If-Match") + " " + r.Header.Get("Content-Type") + " " + string(b)
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	r := &Resource{Token: "t0k", Client: "test"}
	answer, err := r.Post(ctx, srv.URL+"/whip/cam", "v=0 offer")
	if err != nil || answer != "v=0 answer" || r.Location != srv.URL+"/whip/cam/s1" || r.ETag != `"e1"` || auth != "Bearer t0k" {
		t.Fatalf("POST: %q %v, Location %q, ETag %q, auth %q", answer, err, r.Location, r.ETag, auth)
	}
	resp, _, err := r.Patch(ctx, "application/trickle-ice-sdpfrag", `"e1"`, "a=end-of-candidates\r\n")
	if err != nil || resp.StatusCode != http.StatusNoContent || patched != `"e1" application/trickle-ice-sdpfrag a=end-of-candidates`+"\r\n" {
		t.Fatalf("PATCH: %v %v, server saw %q", resp, err, patched)
	}
	if code, err := r.Delete(ctx); code != http.StatusOK || err != nil {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	refused := &Resource{Client: "test"}
	_, err = refused.Post(ctx, srv.URL+"/whip/full", "v=0")
	var se *StatusError
	if !errors.As(err, &se) || !errors.Is(err, ErrStatus) || se.Code != http.StatusServiceUnavailable ||
		err.Error() != "test: POST: 503 Service Unavailable: too many publishers" {
		t.Fatalf("refused POST: %v", err)
	}
	if code, err := refused.Delete(ctx); code != 0 || err != nil {
		t.Fatalf("DELETE of a resource never made: %d %v", code, err)
	}
}
