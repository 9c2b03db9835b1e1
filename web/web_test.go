package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/whipcast/whipcast/ingest"
)

func TestBearerAuth(t *testing.T) {
	if BearerAuth("") != nil {
		t.Fatal("empty token must mean no auth callback")
	}
	auth := BearerAuth("s3cret")
	for _, tc := range []struct {
		header string
		want   error
	}{
		{"", ingest.ErrUnauthorized},
		{"Basic czNjcmV0", ingest.ErrUnauthorized},
		{"Bearer ", ingest.ErrUnauthorized},
		{"Bearer wrong", ingest.ErrForbidden},
		{"Bearer s3cre", ingest.ErrForbidden},
		{"Bearer s3cret", nil},
		{"bearer s3cret", nil},
	} {
		t.Run(tc.header, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/whip/x", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if err := auth(r, "x"); !errors.Is(err, tc.want) {
				t.Fatalf("auth(%q) = %v, want %v", tc.header, err, tc.want)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	ready := errors.New("draining")
	var readyErr error
	h := NewHandler(Handlers{
		WHIP:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "whip:"+r.URL.Path) }),
		HLS:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hls:"+r.URL.Path) }),
		Ready: func() error { return readyErr },
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) (int, string) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/whip/a/b", 200, "whip:a/b"},
		{"/hls/a/b/index.m3u8", 200, "hls:a/b/index.m3u8"},
		{"/healthz", 200, "ok"},
		{"/readyz", 200, "ready"},
		{"/", 200, "POST /whip/{stream}"},
		{"/nope", 404, ""},
	} {
		code, body := get(tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.body)
		}
	}
	readyErr = ready
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while not ready: %d %q", code, body)
	}
}
