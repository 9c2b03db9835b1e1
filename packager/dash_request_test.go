package packager

import (
	"errors"
	"testing"
)

func TestParseDASHRequest(t *testing.T) {
	for _, tc := range []struct {
		path string
		want dashRequest
		ok   bool
	}{
		{"a/b/manifest.mpd", dashRequest{stream: "a/b", file: dashManifest}, true},
		{"/cam/manifest.mpd", dashRequest{stream: "cam", file: dashManifest}, true},
		{"cam/video_k1_init0.mp4", dashRequest{stream: "cam", file: dashInit, track: "video", epoch: "k1"}, true},
		{"cam/audio2_k1_p7_t960.m4s", dashRequest{stream: "cam", file: dashSegment, track: "audio2", epoch: "k1", period: 7, num: 960}, true},
		{"cam/audio2_k1_t960.m4s", dashRequest{}, false},
		{"cam/audio2_k1_p_t960.m4s", dashRequest{}, false},
		{"cam/audio2_k1_p01_t960.m4s", dashRequest{}, false},
		{"cam/audio2_k1_t960_p7.m4s", dashRequest{}, false},
		{"manifest.mpd", dashRequest{}, false},
		{"/manifest.mpd", dashRequest{}, false},
		{"a/../manifest.mpd", dashRequest{}, false},
		{"cam/index.m3u8", dashRequest{}, false},
		{"cam/video_k1_p0_t01.m4s", dashRequest{}, false},
		{"cam/video_k1_p0_t.m4s", dashRequest{}, false},
		{"cam/video_k1_init0.m4s", dashRequest{}, false},
		{"cam/video_k1_p0_t5.mp4", dashRequest{}, false},
		{"cam/video_k1_p0_t-5.m4s", dashRequest{}, false},
		{"cam/video_t5.m4s", dashRequest{}, false},
		{"cam/Video_k1_p0_t5.m4s", dashRequest{}, false},
		{"cam/video_k1_p0_t99999999999999999.m4s", dashRequest{}, false},
	} {
		got, err := parseDASHRequest(tc.path)
		if !tc.ok {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: err %v, want ErrNotFound", tc.path, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.path, got, err, tc.want)
		}
	}
}

// FuzzParseDASHRequest: any path parses or is refused with ErrNotFound,
// never panics, and what parses names the file it came from.
func FuzzParseDASHRequest(f *testing.F) {
	for _, s := range []string{"cam/manifest.mpd", "a/b/video_k1_init0.mp4", "x/audio_e9_p3_t48000.m4s", "x//t1.m4s", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req, err := parseDASHRequest(path)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("%q: %v does not wrap ErrNotFound", path, err)
			}
			return
		}
		var name string
		switch req.file {
		case dashManifest:
			name = req.stream + "/" + dashManifestName
		case dashInit:
			name = req.stream + "/" + dashInitName(req.track, req.epoch, int(req.num))
		case dashSegment:
			name = req.stream + "/" + dashSegmentName(req.track, req.epoch, req.period, req.num)
		default:
			t.Fatalf("%q: file %d", path, req.file)
		}
		if name != path && "/"+name != path {
			t.Fatalf("%q parsed as %+v, which is named %q", path, req, name)
		}
	})
}
