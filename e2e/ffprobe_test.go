package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// probe is what ffprobe reports of one URL.
type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		SampleRt  string `json:"sample_rate"`
		StartTime string `json:"start_time"`
		NbFrames  string `json:"nb_read_frames"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func (p *probe) stream(kind string) (codec string, start float64, frames int, ok bool) {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			start, _ = strconv.ParseFloat(s.StartTime, 64)
			frames, _ = strconv.Atoi(s.NbFrames)
			return s.CodecName, start, frames, true
		}
	}
	return "", 0, 0, false
}

func (p *probe) duration() float64 {
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return d
}

// runProbe runs ffprobe on url, counting frames when count is set.
func runProbe(t *testing.T, url string, count bool) *probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-v", "error", "-print_format", "json", "-show_format", "-show_streams"}
	if count {
		args = append(args, "-count_frames")
	}
	out, err := exec.CommandContext(ctx, "ffprobe", append(args, url)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v\n%s", url, err, stderr)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return &p
}

// ffmpegDecodeErrors decodes every frame of input with ffmpeg and returns what it
// reports ("" when clean). The null muxer's complaint about two video frames
// on the same tick of its guessed frame rate is dropped: WebRTC video has
// jittered timestamps, and that line says nothing about the input.
func ffmpegDecodeErrors(input string) string {
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", input, "-f", "null", "-").CombinedOutput()
	var kept []string
	dropped := false
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.Contains(l, "non monotonically increasing dts to muxer"):
			dropped = true
		case dropped && strings.Contains(l, "Last message repeated"):
			// ffmpeg's count of the line just dropped
		case l != "":
			dropped = false
			kept = append(kept, l)
		}
	}
	if err != nil {
		kept = append(kept, err.Error())
	}
	return strings.Join(kept, "\n")
}
