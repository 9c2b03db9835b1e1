package outputs

import (
	"testing"

	"github.com/whipcast/whipcast/media"
)

func TestMatchAndURLs(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "a/b/c", true}, {"cam*", "cam1", true}, {"cam*", "studio/cam1", false},
		{"*/cam?", "studio/cam1", true}, {"*/cam?", "studio/cam12", false}, {"exact", "exact", true}, {"", "x", false},
	} {
		if got := media.MatchName(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
	r := NewRestream(RestreamSettings{Rules: []Rule{
		{Match: "test*"},
		{Match: "*", Restream: []Destination{{URL: "rtmp://h/live/{stream}"}, {URL: "rtmps://h2/app/k-{stream}", Enhanced: true}}},
	}}, nil, nil)
	if u := r.URLs("test1"); len(u) != 0 {
		t.Errorf("first match wins: %v", u)
	}
	if u := r.URLs("a/b"); len(u) != 2 || u[0] != "rtmp://h/live/a/b" || u[1] != "rtmps://h2/app/k-a/b" {
		t.Errorf("URLs %v", u)
	}
	if d := r.Destinations("a/b"); len(d) != 2 || d[0].Enhanced || !d[1].Enhanced {
		t.Errorf("Destinations %+v", d)
	}
}
