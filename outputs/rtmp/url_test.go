package rtmp

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in                          string
		scheme, host, app, key, red string
	}{
		{"rtmp://a.rtmp.youtube.com/live2/abcd-efgh", "rtmp", "a.rtmp.youtube.com:1935", "live2", "abcd-efgh", "rtmp://a.rtmp.youtube.com:1935/live2/****"},
		{"rtmps://live.twitch.tv/app/live_123?bandwidthtest=true", "rtmps", "live.twitch.tv:443", "app", "live_123?bandwidthtest=true", "rtmps://live.twitch.tv:443/app/****"},
		{"rtmp://127.0.0.1:1936/live/cam/1", "rtmp", "127.0.0.1:1936", "live", "cam/1", "rtmp://127.0.0.1:1936/live/****"},
		{"RTMP://[::1]/a/b%2Fc", "rtmp", "[::1]:1935", "a", "b%2Fc", "rtmp://[::1]:1935/a/****"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Scheme != tc.scheme || got.Host != tc.host || got.App != tc.app || got.Key != tc.key {
				t.Errorf("got %+v", got)
			}
			if got.Redacted() != tc.red {
				t.Errorf("redacted %q, want %q", got.Redacted(), tc.red)
			}
		})
	}
	for _, bad := range []string{"http://h/app/secretkey", "rtmp://h/app", "rtmp:///app/secretkey", "rtmp://h//secretkey", "::secretkey"} {
		_, err := ParseURL(bad)
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("%q: %v, want ErrBadURL", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secretkey") {
			t.Errorf("%q: error shows the key: %v", bad, err)
		}
	}
}

func TestBackoffSchedule(t *testing.T) {
	b := Backoff{Min: 500e6, Max: 8e9, Jitter: 0.5}
	want := []string{"500ms", "1s", "2s", "4s", "8s", "8s", "8s"}
	for n, w := range want {
		if got := b.Delay(n, 0).String(); got != w {
			t.Errorf("retry %d: %s, want %s", n, got, w)
		}
	}
	// Jitter takes up to half off.
	if got := b.Delay(3, 0.999999).Round(1e6).String(); got != "2s" {
		t.Errorf("jittered retry 3: %s, want 2s", got)
	}
	if got := (Backoff{}).Delay(100, 0).String(); got != "30s" {
		t.Errorf("default cap %s, want 30s", got)
	}
}
