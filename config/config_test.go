package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultRuns(t *testing.T) {
	c, err := Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":8080" || c.WebRTC.Port != 8189 || c.HLS.Segment != 2*time.Second ||
		c.HLS.Part != 200*time.Millisecond || c.HLS.Window != 7 || c.WebRTC.UDPBuffer != 4<<20 ||
		!c.WebRTC.Loopback() || c.Audio.Codec != AudioAAC || c.WebRTC.ReconnectWindow != 10*time.Second ||
		c.HLS.Idle != 30*time.Second {
		t.Fatalf("defaults wrong: %+v", c)
	}
}

func TestDefaultLimits(t *testing.T) {
	c, err := Load(nil, []string{"WHIPCAST_LIMITS_MAX_PUBLISHERS=0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxPublishers != 0 || c.Limits.MaxCPU != 0.9 || c.Limits.MaxLag != 50*time.Millisecond || c.Limits.PublisherCost != 0 ||
		c.Limits.MaxMachineCPU != 0.9 {
		t.Fatalf("limits: %+v", c.Limits)
	}
	if c, _ = Load(nil, nil); c.Limits.MaxPublishers != 100 {
		t.Fatalf("limits.max_publishers default %d", c.Limits.MaxPublishers)
	}
}

func TestFileOverridesAndEnv(t *testing.T) {
	doc := []byte("http:\n  addr: 127.0.0.1:9000\nwebrtc:\n  public_ips: [203.0.113.7]\n  udp_buffer: 8MiB\nhls:\n  part: 300ms\n")
	c, err := Load(doc, []string{"WHIPCAST_WEBRTC_PORT=9999", "WHIPCAST_AUTH_PUBLISH_TOKEN=s3cret", "PATH=/bin",
		"WHIPCAST_WEBRTC_PUBLIC_IPS=198.51.100.1,198.51.100.2", "WHIPCAST_WEBRTC_INCLUDE_LOOPBACK=false", "WHIPCAST_AUDIO_CODEC=opus"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Audio.Codec != AudioOpus {
		t.Errorf("WHIPCAST_AUDIO_CODEC: %q", c.Audio.Codec)
	}
	if c.HTTP.Addr != "127.0.0.1:9000" || c.WebRTC.Port != 9999 || c.Auth.PublishToken != "s3cret" ||
		c.HLS.Part != 300*time.Millisecond || c.HLS.Segment != 2*time.Second || c.WebRTC.UDPBuffer != 8<<20 ||
		c.WebRTC.Loopback() {
		t.Fatalf("overrides wrong: %+v", c)
	}
	if strings.Join(c.WebRTC.PublicIPs, ",") != "198.51.100.1,198.51.100.2" {
		t.Fatalf("public_ips %v", c.WebRTC.PublicIPs)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		doc, env, want string
	}{
		{doc: "http:\n  adr: x\n", want: "field adr not found"},
		{doc: "dash:\n  enabeld: true\n", want: "field enabeld not found"},
		{doc: "http:\n  addr: nope\n", want: "http.addr"},
		{doc: "webrtc:\n  port: 70000\n", want: "webrtc.port"},
		{doc: "webrtc:\n  public_ips: [not-an-ip]\n", want: "webrtc.public_ips[0]"},
		{doc: "webrtc:\n  udp_buffer: 4 parsecs\n", want: "not a size"},
		{doc: "webrtc:\n  reconnect_window: -1s\n", want: "webrtc.reconnect_window"},
		{doc: "webrtc:\n  reconnect_window: 1h\n", want: "webrtc.reconnect_window"},
		{doc: "hls:\n  segment: 100ms\n", want: "hls.segment"},
		{doc: "hls:\n  part: 5s\n", want: "hls.part"},
		{doc: "hls:\n  window: 1\n", want: "hls.window"},
		{doc: "dash:\n  target_latency: 100ms\n", want: "dash.target_latency"},
		{doc: "log:\n  level: loud\n", want: "log.level"},
		{doc: "audio:\n  codec: mp3\n", want: "audio.codec"},
		{doc: "rooms:\n  max: 0\n", want: "rooms.max"},
		{doc: "rooms:\n  grace: 10ms\n", want: "rooms.grace"},
		{doc: "limits:\n  max_publishers: -1\n", want: "limits.max_publishers"},
		{doc: "limits:\n  max_cpu: 1.5\n", want: "limits.max_cpu"},
		{doc: "limits:\n  max_machine_cpu: 2\n", want: "limits.max_machine_cpu"},
		{env: "WHIPCAST_LIMITS_MAX_MACHINE_CPU=-0.5", want: "limits.max_machine_cpu"},
		{doc: "limits:\n  publisher_cost: 0.0001\n", want: "limits.publisher_cost"},
		{doc: "limits:\n  publisher_cost: -1\n", want: "limits.publisher_cost"},
		{doc: "limits:\n  max_lag: -1s\n", want: "limits.max_lag"},
		{doc: "audio:\n  codec: AAC\n", want: "audio.codec"},
		{doc: "audio:\n  codecs: aac\n", want: "field codecs not found"},
		{env: "WHIPCAST_HTTP_ADRESS=x", want: "names no key"},
		{env: "WHIPCAST_WEBRTC_PORT=abc", want: "WHIPCAST_WEBRTC_PORT"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			var env []string
			if tc.env != "" {
				env = []string{tc.env}
			}
			_, err := Load([]byte(tc.doc), env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("hls:\n  window: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(p, nil)
	if err != nil || c.HLS.Window != 5 {
		t.Fatalf("LoadFile: %v %+v", err, c)
	}
	if _, err := LoadFile(p+".missing", nil); err == nil {
		t.Fatal("missing file accepted")
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("http:\n  addr: :1\n"))
	f.Add([]byte("webrtc:\n  udp_buffer: 1KiB\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Load(doc, nil)
		if err == nil && c.Validate() != nil {
			t.Fatal("Load returned an invalid config")
		}
	})
}

func TestStorageAndStreams(t *testing.T) {
	c, err := Load([]byte("storage: {type: s3, s3: {bucket: b}}\nstreams:\n  - {match: \"studio/*\", record: true}\n  - {match: \"*\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"studio/main": true, "studio": false, "cam1": false} {
		r, ok := c.Rule(name)
		if !ok || r.Record != want {
			t.Errorf("Rule(%q) = %+v, %v; want record %v", name, r, ok, want)
		}
	}
	if c.Storage.ShutdownTimeout.Seconds() != 30 || c.Storage.SpoolDir != "./spool" {
		t.Errorf("defaults: %+v", c.Storage)
	}
	for _, doc := range []string{
		"storage: {type: ftp}",
		"storage: {type: s3}",
		"storage: {type: s3, s3: {bucket: b, access_key: k}}",
		"storage: {spool_dir: \"\"}",
		"storage: {shutdown_timeout: 0s}",
		"storage: {unknown: 1}",
	} {
		if _, err := Load([]byte(doc), nil); err == nil {
			t.Errorf("%q accepted", doc)
		}
	}
}

func TestRestreamConfig(t *testing.T) {
	c, err := Load([]byte("audio: {bitrate: 96k}\nstreams:\n  - restream: [\"rtmps://live.example.com/app/{stream}?k=1\"]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audio.Bitrate != 96000 || c.Streams[0].Match != "*" || !c.RestreamEnabled() {
		t.Errorf("got %+v %+v", c.Audio, c.Streams)
	}
	for _, doc := range []string{
		"streams:\n  - restream: [\"http://h/app/s3cret\"]\n",
		"streams:\n  - restream: [\"rtmp://h/s3cret\"]\n",
		"audio: {bitrate: 8k}\n",
		"streams:\n  - match: \"*\"\n    bogus: 1\n",
	} {
		_, err := Load([]byte(doc), nil)
		if err == nil {
			t.Errorf("%q accepted", doc)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the key: %v", err)
		}
	}
}

// A restream entry is a URL string or {url, enhanced}; both forms mix in one
// list, and the mapping form is strict.
func TestRestreamDestinations(t *testing.T) {
	c, err := Load([]byte("streams:\n  - restream:\n    - rtmp://a/live/k\n    - {url: \"rtmps://b/app/{stream}\", enhanced: true}\n    - url: rtmp://c/live/k2\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Destination{{URL: "rtmp://a/live/k"}, {URL: "rtmps://b/app/{stream}", Enhanced: true}, {URL: "rtmp://c/live/k2"}}
	if got := c.Streams[0].Restream; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("restream %+v, want %+v", got, want)
	}
	for doc, msg := range map[string]string{
		"streams:\n  - restream: [{url: \"rtmp://a/live/k\", enhance: true}]\n":   "field enhance not found",
		"streams:\n  - restream: [{url: \"rtmp://a/live/k\", enhanced: maybe}]\n": "bool",
		"streams:\n  - restream: [[\"rtmp://a/live/k\"]]\n":                       "a URL or {url",
		"streams:\n  - restream: [{enhanced: true}]\n":                            "streams[0].restream[0]",
		"streams:\n  - restream: [{url: \"http://a/live/s3cret\"}]\n":             "streams[0].restream[0]",
	} {
		_, err := Load([]byte(doc), nil)
		if err == nil || !strings.Contains(err.Error(), msg) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error %v, want one containing %q", doc, err, msg)
		}
	}
}

// max_retries of a restream destination: read, and refused below 0.
func TestRestreamMaxRetries(t *testing.T) {
	c, err := Load([]byte("streams:\n  - restream:\n    - {url: \"rtmp://a/live/k\", max_retries: 5}\n    - rtmp://b/live/k\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Streams[0].Restream; len(d) != 2 || d[0].MaxRetries != 5 || d[1].MaxRetries != 0 {
		t.Fatalf("destinations %+v", d)
	}
	if _, err := Load([]byte("streams:\n  - restream:\n    - {url: \"rtmp://a/live/k\", max_retries: -1}\n"), nil); err == nil || !strings.Contains(err.Error(), "max_retries") {
		t.Fatalf("max_retries -1: %v", err)
	}
}
