package web

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/whipcast/whipcast/ingest"
)

const secret = "0123456789abcdef0123456789abcdef"

func TestVerifyJWT(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sign := func(c map[string]any, key string) string {
		tok, err := SignJWT(c, []byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(map[string]any{"sub": "studio/*", "perm": []string{"play", "publish"}, "exp": now.Unix() + 60}, secret)
	for _, tc := range []struct {
		name string
		tok  string
		want error
	}{
		{"valid", good, nil},
		{"expired", sign(map[string]any{"sub": "*", "perm": "play", "exp": now.Unix() - 1}, secret), ErrJWTExpired},
		{"not yet", sign(map[string]any{"sub": "*", "perm": "play", "nbf": now.Unix() + 10}, secret), ErrJWTNotYet},
		{"bad signature", sign(map[string]any{"sub": "*", "perm": "play"}, "another-secret-of-32-characters!"), ErrJWTSignature},
		{"alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIqIiwicGVybSI6InBsYXkifQ.", ErrJWTAlg},
		{"tampered payload", good[:len(good)-60] + "A" + good[len(good)-59:], ErrJWTSignature},
		{"garbage", "a.b", ErrJWTMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyJWT(tc.tok, []byte(secret), now)
			if !errors.Is(err, tc.want) && !(tc.name == "tampered payload" && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAuthPublishPlay(t *testing.T) {
	a := &Auth{Publish: "pub", Play: "watch", JWTSecret: secret}
	exp := time.Now().Add(time.Hour).Unix()
	jwt := func(sub string, perm any, exp int64) string {
		tok, _ := SignJWT(map[string]any{"sub": sub, "perm": perm, "exp": exp}, []byte(secret))
		return tok
	}
	for _, tc := range []struct {
		name, stream, perm, header, query string
		want                              error
	}{
		{"publish no token", "cam1", PermPublish, "", "", ingest.ErrUnauthorized},
		{"publish static", "cam1", PermPublish, "Bearer pub", "", nil},
		{"publish with play token", "cam1", PermPublish, "Bearer watch", "", ingest.ErrForbidden},
		{"publish jwt", "studio/a", PermPublish, "Bearer " + jwt("studio/*", "publish", exp), "", nil},
		{"publish jwt wrong perm", "studio/a", PermPublish, "Bearer " + jwt("studio/*", "play", exp), "", ingest.ErrForbidden},
		{"publish jwt wrong stream", "other", PermPublish, "Bearer " + jwt("studio/*", "publish", exp), "", ingest.ErrForbidden},
		{"publish jwt expired", "studio/a", PermPublish, "Bearer " + jwt("studio/*", "publish", time.Now().Add(-time.Second).Unix()), "", ingest.ErrForbidden},
		{"play query static", "cam1", PermPlay, "", "watch", nil},
		{"play query jwt list", "cam1", PermPlay, "", jwt("cam?", []string{"publish", "play"}, exp), nil},
		{"play wrong", "cam1", PermPlay, "", "pub", ingest.ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x?token="+tc.query, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			f := a.PublishAuth()
			if tc.perm == PermPlay {
				f = a.PlayAuth()
			}
			if err := f(r, tc.stream); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if (&Auth{}).PlayAuth() != nil || (&Auth{}).PublishAuth() != nil {
		t.Fatal("no credentials configured must mean open")
	}
}

func TestAdminAuth(t *testing.T) {
	for _, tc := range []struct {
		name, admin, remote, header, origin string
		want                                int
	}{
		{"open on loopback", "", "127.0.0.1:5000", "", "", 200},
		{"open refuses remote", "", "192.0.2.1:5000", "", "", 403},
		{"open refuses cross-origin", "", "127.0.0.1:5000", "", "http://evil.example", 403},
		{"token missing", "adm", "127.0.0.1:5000", "", "", 401},
		{"token wrong", "adm", "127.0.0.1:5000", "Bearer nope", "", 403},
		{"token right, remote", "adm", "192.0.2.1:5000", "Bearer adm", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := NewAPI(APIOptions{Streams: fakeStreams{}, Auth: &Auth{Admin: tc.admin}})
			r := httptest.NewRequest("GET", "/v1/streams", nil)
			r.RemoteAddr = tc.remote
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.want)
			}
		})
	}
}
