package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Generated media: -video gen and -audio gen make the files the publishers
// send with the ffmpeg on PATH (lavfi test sources, libx264, libopus)
// before the run, in a temporary directory removed after it. The clip is
// genSeconds long and sent in a loop like a file.
const (
	genVideo   = "gen"
	genSeconds = 10
)

var reGenSize = regexp.MustCompile(`^([1-9][0-9]{1,4})x([1-9][0-9]{1,4})$`)

// parseBitrate reads "2500k", "2.5M" or "2500000" as bits per second.
func parseBitrate(s string) (int, error) {
	mult := 1.0
	num := s
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, num = 1e3, s[:n-1]
		case 'm', 'M':
			mult, num = 1e6, s[:n-1]
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%w: bitrate %q is not like 2500k", ErrUsage, s)
	}
	return int(v * mult), nil
}

// videoGenArgs is the ffmpeg command line for the generated video: a moving
// test picture at size, fps and bitrate, H.264 constrained baseline with a
// keyframe every gop and SPS/PPS before each (as libwebrtc sends), Annex-B,
// one slice per picture (the publisher sends a slice as a frame; x264's
// zerolatency tune would cut several).
func videoGenArgs(out, size string, fps int, gop time.Duration, bitrate int) []string {
	g := max(1, int(gop.Seconds()*float64(fps)+0.5))
	return []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d", size, fps), "-t", strconv.Itoa(genSeconds),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(g), "-keyint_min", strconv.Itoa(g), "-sc_threshold", "0",
		"-b:v", strconv.Itoa(bitrate), "-maxrate", strconv.Itoa(bitrate), "-bufsize", strconv.Itoa(bitrate),
		"-bsf:v", "h264_mp4toannexb", "-f", "h264", out}
}

// audioGenArgs is the ffmpeg command line for the generated audio: a tone,
// Opus 48 kHz stereo 64 kb/s, 20 ms packets one per Ogg page (what the
// publisher sends as one sample each).
func audioGenArgs(out string) []string {
	return []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", strconv.Itoa(genSeconds),
		"-ac", "2", "-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20", "-page_duration", "20000", out}
}

// generate makes the files that c asks to generate and returns c pointing
// at them, and a function that removes them.
func generate(ctx context.Context, c Config) (Config, func(), error) {
	if c.Video != genVideo && c.Audio != genVideo {
		return c, func() {}, nil
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return c, func() {}, fmt.Errorf("generated media needs ffmpeg on PATH: %w", err)
	}
	dir, err := os.MkdirTemp("", "whipcast-bench-")
	if err != nil {
		return c, func() {}, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	run := func(args []string) error {
		out, err := exec.CommandContext(ctx, ffmpeg, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ffmpeg %v: %w: %s", args, err, out)
		}
		return nil
	}
	if c.Video == genVideo {
		c.Video = filepath.Join(dir, "video.h264")
		if err := run(videoGenArgs(c.Video, c.GenSize, c.FPS, c.GOP, c.GenBitrate)); err != nil {
			cleanup()
			return c, func() {}, err
		}
	}
	if c.Audio == genVideo {
		c.Audio = filepath.Join(dir, "audio.ogg")
		if err := run(audioGenArgs(c.Audio)); err != nil {
			cleanup()
			return c, func() {}, err
		}
	}
	return c, cleanup, nil
}
