package config

import (
	"strings"
	"testing"
	"time"
)

func TestICEServers(t *testing.T) {
	doc := `webrtc:
  ice_servers:
    - urls: ["stun:stun.example.net", "stun:[2001:db8::1]:3478"]
    - urls: ["turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349?transport=tcp"]
      username: user
      credential: pass
    - urls: ["turn:127.0.0.1:3478"]
      secret: s3cret
      ttl: 1h
`
	c, err := Load([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.WebRTC.ICEServers
	if len(s) != 3 || len(s[0].URLs) != 2 || s[1].Username != "user" || s[1].Credential != "pass" ||
		s[2].Secret != "s3cret" || s[2].TTL != time.Hour {
		t.Fatalf("ice_servers: %+v", s)
	}
	if d, _ := Load(nil, nil); len(d.WebRTC.ICEServers) != 0 {
		t.Errorf("default ice_servers: %+v", d.WebRTC.ICEServers)
	}
}

func TestICEServersErrorsNameTheKey(t *testing.T) {
	const k = "webrtc:\n  ice_servers:\n"
	for _, tc := range []struct{ doc, want string }{
		{k + "    - username: u\n", "webrtc.ice_servers[0].urls: at least one"},
		{k + "    - urls: [\"http://stun.example.net\"]\n", "webrtc.ice_servers[0].urls[0]: scheme \"http\""},
		{k + "    - urls: [stun.example.net]\n", "webrtc.ice_servers[0].urls[0]"},
		{k + "    - urls: [\"stun://stun.example.net\"]\n", "without // or a path"},
		{k + "    - urls: [\"stun:\"]\n", "has no host"},
		{k + "    - urls: [\"stun:2001:db8::1\"]\n", "in brackets"},
		{k + "    - urls: [\"stun:h:0\"]\n", "port \"0\""},
		{k + "    - urls: [\"stun:h?transport=udp\"]\n", "takes no query"},
		{k + "    - urls: [\"turn:h?transport=sctp\"]\n      secret: x\n", "transport=udp or transport=tcp"},
		{k + "    - urls: [\"stun:a\"]\n    - urls: [\"turn:h\"]\n", "webrtc.ice_servers[1]: turn: and turns: URLs need username and credential, or secret"},
		{k + "    - urls: [\"turns:h\"]\n      username: u\n", "webrtc.ice_servers[0]: turn: and turns: URLs need"},
		{k + "    - urls: [\"turn:h\"]\n      username: u\n      credential: p\n      secret: s\n", "either secret or username"},
		{k + "    - urls: [\"stun:h\"]\n      secret: s\n", "webrtc.ice_servers[0].secret: applies to turn"},
		{k + "    - urls: [\"turn:h\"]\n      secret: s\n      ttl: -1s\n", "webrtc.ice_servers[0].ttl"},
		{k + "    - urls: [\"turn:h\"]\n      username: u\n      credential: p\n      ttl: 1h\n", "webrtc.ice_servers[0].ttl: applies with secret only"},
		{k + "    - urls: [\"turn:h\"]\n      secrett: s\n", "field secrett not found"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Load([]byte(tc.doc), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// A credential is a secret: never echoed.
	_, err := Load([]byte(k+"    - urls: [\"turn:h\"]\n      username: u\n      credential: \"hunter2\\n\"\n"), nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v", err)
	}
}
