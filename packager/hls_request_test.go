package packager

import (
	"errors"
	"testing"

	"github.com/whipcast/whipcast/media"
)

func TestParseHLSRequest(t *testing.T) {
	for _, tc := range []struct {
		path, query string
		want        hlsRequest
		err         error
	}{
		{"a/b/c/index.m3u8", "", hlsRequest{stream: "a/b/c", file: fileMultivariant, blockMSN: -1, blockPart: -1}, nil},
		{"/cam/video.m3u8", "_HLS_msn=12&_HLS_part=3", hlsRequest{stream: "cam", file: fileMedia, track: "video", blockMSN: 12, blockPart: 3}, nil},
		{"cam/audio2.m3u8", "_HLS_msn=0", hlsRequest{stream: "cam", file: fileMedia, track: "audio2", blockMSN: 0, blockPart: -1}, nil},
		{"x/video_k1_init2.mp4", "", hlsRequest{stream: "x", file: fileInit, track: "video", epoch: "k1", num: 2, blockMSN: -1, blockPart: -1}, nil},
		{"x/y/video_k1_seg40.m4s", "", hlsRequest{stream: "x/y", file: fileSegment, track: "video", epoch: "k1", num: 40, blockMSN: -1, blockPart: -1}, nil},
		{"x/audio_k1_part40_9.m4s", "", hlsRequest{stream: "x", file: filePart, track: "audio", epoch: "k1", num: 40, part: 9, blockMSN: -1, blockPart: -1}, nil},
		{"cam/video.m3u8", "_HLS_part=3", hlsRequest{}, ErrBadRequest},
		{"cam/video.m3u8", "_HLS_msn=-1", hlsRequest{}, ErrBadRequest},
		{"cam/video.m3u8", "_HLS_msn=99999999999999999999", hlsRequest{}, ErrBadRequest},
		{"cam/index.m3u8", "_HLS_msn=1", hlsRequest{}, ErrBadRequest},
		{"cam/video.m3u8", "%zz", hlsRequest{}, ErrBadRequest},
		{"index.m3u8", "", hlsRequest{}, ErrNotFound},
		{"/index.m3u8", "", hlsRequest{}, ErrNotFound},
		{"a//index.m3u8", "", hlsRequest{}, ErrNotFound},
		{"a/../index.m3u8", "", hlsRequest{}, ErrNotFound},
		{"cam/", "", hlsRequest{}, ErrNotFound},
		{"cam/Video.m3u8", "", hlsRequest{}, ErrNotFound},
		{"cam/video_k1_seg01.m4s", "", hlsRequest{}, ErrNotFound},
		{"cam/video_k1_seg.m4s", "", hlsRequest{}, ErrNotFound},
		{"cam/video_k1_init1.m4s", "", hlsRequest{}, ErrNotFound},
		{"cam/video_k1_part1.m4s", "", hlsRequest{}, ErrNotFound},
		{"cam/video__seg1.m4s", "", hlsRequest{}, ErrNotFound},
		{"cam/video_k1_seg1_2.m4s", "", hlsRequest{}, ErrNotFound},
	} {
		got, err := parseHLSRequest(tc.path, tc.query)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s?%s: err %v, want %v", tc.path, tc.query, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s?%s: %+v %v, want %+v", tc.path, tc.query, got, err, tc.want)
		}
	}
}

// FuzzParseHLSRequest: any path and query either fails cleanly or yields a
// request whose names round-trip through the URL builders.
func FuzzParseHLSRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"live/cam/index.m3u8", ""},
		{"live/cam/video.m3u8", "_HLS_msn=3&_HLS_part=1"},
		{"cam/video_abc_init0.mp4", ""},
		{"cam/audio_abc_seg12.m4s", ""},
		{"cam/video_abc_part12_3.m4s", "_HLS_msn=1"},
		{"a/b/../c/index.m3u8", "_HLS_part=2"},
		{"cam/video.m3u8", "_HLS_msn=18446744073709551616&_HLS_part=-1"},
		{"cam/video.m3u8", "_HLS_msn=5&_HLS_skip=YES"},
		{"cam/audio.m3u8", "_HLS_skip=v2&_HLS_msn=0&_HLS_part=0&_HLS_msn=1"},
		{"cam/video.m3u8", "_HLS_msn=%zz&token=x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		req, err := parseHLSRequest(path, query)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrNotFound) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if media.ValidateName(req.stream) != nil {
			t.Fatalf("accepted bad stream name %q", req.stream)
		}
		if req.blockPart >= 0 && req.blockMSN < 0 || req.blockMSN >= 0 && req.file != fileMedia {
			t.Fatalf("bad blocking request accepted: %+v", req)
		}
		var name string
		switch req.file {
		case fileMultivariant:
			name = "index.m3u8"
		case fileMedia:
			name = req.track + ".m3u8"
		case fileInit:
			name = initName(req.track, req.epoch, int(req.num))
		case fileSegment:
			name = string(appendSegName(nil, req.track, req.epoch, req.num))
		case filePart:
			name = string(appendPartName(nil, req.track, req.epoch, req.num, req.part))
		default:
			t.Fatalf("no file kind: %+v", req)
		}
		again, err := parseHLSRequest(req.stream+"/"+name, "")
		if err != nil {
			t.Fatalf("round trip of %q: %v", name, err)
		}
		again.blockMSN, again.blockPart = req.blockMSN, req.blockPart
		if again != req {
			t.Fatalf("round trip: %+v != %+v", again, req)
		}
	})
}
