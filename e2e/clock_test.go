package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/outputs/rtmp"
)

// TestE2ELyingSenderReports publishes 10 s from a client whose RTCP Sender
// Reports lie as GStreamer 1.22's do (NTP time at 2× and at 0.5× the RTP
// clock) or step (a jump of 3 s that later SRs keep), and once honestly as
// the control. HLS and RTMP (nginx-rtmp's recording) must last the publish
// within 2 %, with timestamps strictly increasing per track and
// PROGRAM-DATE-TIME increasing (issue 11, clocks that lie).
func TestE2ELyingSenderReports(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts whipclient.Options
	}{
		{"honest", whipclient.Options{}},
		{"ntp2x", whipclient.Options{SRClockScale: 2}},
		{"ntphalf", whipclient.Options{SRClockScale: 0.5}},
		{"ntpjump", whipclient.Options{SRJump: 3 * time.Second, SRJumpAfter: 3 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) { testLyingSRs(t, tc.name, tc.opts) })
	}
}

func testLyingSRs(t *testing.T, name string, opts whipclient.Options) {
	n := startNginx(t)
	checkNoLeaks(t)
	recDir := t.TempDir()
	g := startGateway(t, fmt.Sprintf("storage:\n  path: %s/rec\n  spool_dir: %s/spool\nstreams:\n  - match: \"clock/*\"\n    record: true\n    restream: [%q]\n",
		recDir, recDir, n.url("live/{stream}")))
	base := "http://" + g.HTTPAddr().String()
	stream := "clock/" + name
	hlsURL := base + "/hls/" + stream + "/index.m3u8"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts.LoopbackOnly = true
	pub, err := whipclient.Publish(ctx, base+"/whip/"+stream, "", fixtureVideo, fixtureAudio, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	waitFor(t, 10*time.Second, "RTMP output live", func() bool { return restreamState(g, stream, 0).State == rtmp.StateLive })
	if _, err := pub.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	_, mv := get(t, hlsURL)
	var playlists []string
	for _, u := range mediaPlaylists(mv) {
		playlists = append(playlists, base+"/hls/"+stream+"/"+u)
	}
	if len(playlists) < 2 {
		t.Fatalf("multivariant playlist:\n%s", mv)
	}
	// A reconnect window may hold the end back; the playlist ends after it.
	waitFor(t, 30*time.Second, "EXT-X-ENDLIST", func() bool {
		_, pl := get(t, playlists[0])
		return strings.Contains(pl, "#EXT-X-ENDLIST")
	})

	const lo, hi = fixtureSeconds * 0.98, fixtureSeconds * 1.02
	// HLS: PROGRAM-DATE-TIME strictly increasing in every media playlist.
	for _, u := range playlists {
		_, pl := get(t, u)
		var last time.Time
		for _, l := range strings.Split(pl, "\n") {
			v, ok := strings.CutPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:")
			if !ok {
				continue
			}
			pdt, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			if !pdt.After(last) {
				t.Errorf("%s: PROGRAM-DATE-TIME %v after %v", u, pdt, last)
			}
			last = pdt
		}
	}
	p := runProbe(t, hlsURL, false)
	_, vs, _, _ := p.stream("video")
	_, as, _, _ := p.stream("audio")
	t.Logf("HLS: duration %.3f s for a %.0f s publish, audio starts %+.0f ms from video", p.duration(), fixtureSeconds, (as-vs)*1000)
	// The publisher starts both tracks together: within 40 ms (one AAC
	// frame is 21 ms) whatever its SRs say.
	if d := as - vs; d > 0.04 || d < -0.04 {
		t.Errorf("HLS: audio starts %.0f ms from video, want within 40 ms", d*1000)
	}
	if d := p.duration(); d < lo || d > hi {
		t.Errorf("HLS duration %.3f s, want %.2f–%.2f", d, lo, hi)
	}
	checkPacketsIncreasing(t, "HLS", hlsURL)
	// Stream copy: the muxer sees the packets' own timestamps.
	out, _ := exec.Command("ffmpeg", "-v", "error", "-i", hlsURL, "-c", "copy", "-f", "null", "-").CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("ffmpeg -c copy of the HLS: %s", s)
	}

	// RTMP: the FLV nginx recorded from our push.
	waitFor(t, 5*time.Second, "RTMP output stopped", func() bool { return len(g.Restream.Status(stream)) == 0 })
	recs := n.stopRecorded()
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d files, want 1", len(recs))
	}
	first, last, frames := flvTimestamps(t, recs[0])
	for _, k := range []byte{8, 9} {
		d := float64(last[k]-first[k]) / 1000
		t.Logf("RTMP tag type %d: %d frames over %.3f s", k, frames[k], d)
		// last − first misses one frame interval (≤ 34 ms).
		if d < lo-0.034 || d > hi {
			t.Errorf("RTMP tag type %d spans %.3f s, want %.2f–%.2f", k, d, lo, hi)
		}
	}
	checkFLVRecording(t, recs[0], lo, hi+0.05)

	// The recording: one MP4 per publish.
	var mp4 string
	waitFor(t, 10*time.Second, "recording.mp4", func() bool {
		m, _ := filepath.Glob(filepath.Join(recDir, "rec", "*", "*", "*", "recording.mp4"))
		if len(m) == 0 {
			m, _ = filepath.Glob(filepath.Join(recDir, "rec", "*", "*", "*", "*", "recording.mp4"))
		}
		if len(m) > 0 {
			mp4 = m[0]
		}
		return mp4 != ""
	})
	rp := runProbe(t, mp4, false)
	t.Logf("recording: duration %.3f s", rp.duration())
	if d := rp.duration(); d < lo || d > hi {
		t.Errorf("recording duration %.3f s, want %.2f–%.2f", d, lo, hi)
	}
	checkPacketsIncreasing(t, "recording", mp4)
}

// checkPacketsIncreasing reads every packet's DTS with ffprobe and checks
// that each stream's are strictly increasing.
func checkPacketsIncreasing(t *testing.T, what, input string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=stream_index,dts", "-of", "csv=p=0", input).Output()
	if err != nil {
		t.Fatalf("ffprobe packets of %s: %v", what, err)
	}
	last := map[string]int64{}
	n, bad := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		idx, v, ok := strings.Cut(strings.TrimSpace(l), ",")
		if !ok {
			continue
		}
		dts, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue // N/A
		}
		if prev, seen := last[idx]; seen && dts <= prev {
			if bad++; bad <= 5 {
				t.Errorf("%s stream %s: DTS %d after %d", what, idx, dts, prev)
			}
		}
		last[idx] = dts
		n++
	}
	if n < 500 {
		t.Errorf("%s: %d packets", what, n)
	}
}

// flvTimestamps reads an FLV file's tags (FLV spec v10.1, E.3 and E.4.1)
// and checks that every audio (8) and video (9) frame has a later
// timestamp than the one before it on its track; sequence headers
// (AVCPacketType / AACPacketType 0) may share their frame's. It returns
// the first and last frame timestamp (ms) and the frame count per type.
func flvTimestamps(t *testing.T, file string) (first, last, frames map[byte]int64) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 13 || string(b[:3]) != "FLV" {
		t.Fatalf("%s is not FLV", file)
	}
	first, last, frames = map[byte]int64{}, map[byte]int64{}, map[byte]int64{}
	repeats := 0
	for i := int(binary.BigEndian.Uint32(b[5:9])) + 4; i+11 <= len(b); {
		typ := b[i] & 0x1f
		size := int(b[i+1])<<16 | int(b[i+2])<<8 | int(b[i+3])
		ts := int64(b[i+7])<<24 | int64(b[i+4])<<16 | int64(b[i+5])<<8 | int64(b[i+6])
		if i+11+size > len(b) {
			break
		}
		data := b[i+11 : i+11+size]
		i += 11 + size + 4
		if typ != 8 && typ != 9 || len(data) < 2 || data[1] == 0 {
			continue // script data or a sequence header
		}
		if n := frames[typ]; n > 0 && ts <= last[typ] {
			if repeats++; repeats <= 5 {
				t.Errorf("%s: tag type %d at %d ms after %d ms", file, typ, ts, last[typ])
			}
		}
		if frames[typ] == 0 {
			first[typ] = ts
		}
		last[typ] = ts
		frames[typ]++
	}
	if repeats > 0 {
		t.Errorf("%d frames not after their predecessor", repeats)
	}
	if frames[8] == 0 || frames[9] == 0 {
		t.Fatalf("FLV frames per type: %v", frames)
	}
	return first, last, frames
}
