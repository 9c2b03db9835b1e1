package bench

import (
	"flag"
	"fmt"
	"io"
	"net"
	"time"
)

// Config is one run's command line.
type Config struct {
	// N is how many publishers run. Default 1.
	N int
	// Duration is how long each publisher sends after it connected.
	// Default 30 s.
	Duration time.Duration
	// WHIP, HLS and DASH are URL templates ({name}, {i}); HLS and DASH
	// empty mean no reader. Default WHIP http://127.0.0.1:8080/whip/{name}.
	WHIP, HLS, DASH string
	// Name is the stream name template ({i}). Default bench{i}.
	Name string
	// Video and Audio are the Annex-B H.264 and Ogg/Opus files sent in a
	// loop, or "gen" for media generated with ffmpeg before the run (see
	// GenSize, GenBitrate, FPS, GOP). Default testdata/av.h264 and
	// testdata/av.ogg.
	Video, Audio string
	// GenSize and GenBitrate shape the generated video (-video gen).
	// Default 1280x720 at 2500k (bits/s), the 720p stream.
	GenSize    string
	GenBitrate int
	// FPS is the video file's frame rate. Default 30.
	FPS int
	// GOP is the video file's keyframe interval, for spreading the
	// publishers' keyframe phases. Default 2 s.
	GOP time.Duration
	// Phase is "spread" (publisher i starts i×GOP/N after the first, so
	// keyframes are spread over the GOP) or "aligned" (all at once).
	// Default spread.
	Phase string
	// PID is the gateway's process, sampled for CPU and peak RSS. Default
	// 0: not sampled.
	PID int
	// Token is sent as a Bearer token on the WHIP requests. Default none.
	Token string
	// AnswerPLI makes publishers answer keyframe requests as browsers do.
	// Default false (keyframes as the file has them, like OBS).
	AnswerPLI bool
	// Retry is how long after its first POST a publisher refused with 503
	// (the gateway's admission) tries again, each time after the answer's
	// Retry-After (5 s without one), as a client that keeps trying does.
	// 0 (the default): a refused publisher gives up.
	Retry time.Duration
	// ConnectTimeout bounds each publish's signalling and ICE. Default 20 s.
	ConnectTimeout time.Duration
	// Label names the run in the JSON line (e.g. "whipcast-opus").
	Label string
	// AnyInterface lets ICE use every interface; default loopback only.
	AnyInterface bool
	// RTMPListen is host:port of an RTMP server the tool runs for the
	// gateway to push to (whipcast: streams[].restream
	// rtmp://ADDR/live/{stream}); each stream's publish is matched to its
	// publisher by name. Default "": no RTMP sink.
	RTMPListen string
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("whipcast-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: whipcast-bench [flags]\n       whipcast-bench table [FILE...]   (JSON lines of runs → one Markdown table)\n\nN WHIP publishers (+ HLS/DASH readers) against a gateway; one JSON line and a table on stdout.\nTemplates: {name} is the stream name, {i} the publisher's index.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.IntVar(&c.N, "n", 1, "number of publishers")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long each publisher sends after it connected")
	fs.StringVar(&c.WHIP, "whip", "http://127.0.0.1:8080/whip/{name}", "WHIP endpoint template (MediaMTX: http://127.0.0.1:8889/{name}/whip)")
	fs.StringVar(&c.HLS, "hls", "", "HLS playlist template, empty for no HLS readers (whipcast: http://127.0.0.1:8080/hls/{name}/index.m3u8; MediaMTX: http://127.0.0.1:8888/{name}/index.m3u8)")
	fs.StringVar(&c.DASH, "dash", "", "DASH MPD template, empty for no DASH readers (whipcast: http://127.0.0.1:8080/dash/{name}/manifest.mpd)")
	fs.StringVar(&c.Name, "name", "bench{i}", "stream name template")
	fs.StringVar(&c.Video, "video", "testdata/av.h264", "H.264 Annex-B file, sent in a loop; gen: generated with ffmpeg (-gen-size, -gen-bitrate, -fps, -gop)")
	fs.StringVar(&c.Audio, "audio", "testdata/av.ogg", "Ogg/Opus file (20 ms packets), sent in a loop; gen: a generated 64 kb/s tone")
	fs.StringVar(&c.GenSize, "gen-size", "1280x720", "picture size of -video gen")
	genBitrate := fs.String("gen-bitrate", "2500k", "bitrate of -video gen")
	fs.IntVar(&c.FPS, "fps", 30, "video frame rate of the file")
	fs.DurationVar(&c.GOP, "gop", 2*time.Second, "keyframe interval of the video file (for -phase spread)")
	fs.StringVar(&c.Phase, "phase", "spread", "keyframe phases: spread (publisher i starts i*gop/n later) or aligned")
	fs.IntVar(&c.PID, "pid", 0, "gateway process id: sample its CPU and peak RSS from /proc")
	fs.StringVar(&c.Token, "token", "", "Bearer token for WHIP")
	fs.BoolVar(&c.AnswerPLI, "answer-pli", false, "answer keyframe requests (PLI) as browsers do")
	fs.DurationVar(&c.Retry, "retry", 0, "a publisher refused with 503 tries again after Retry-After until this long after its first POST (0: never)")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 20*time.Second, "bound on each publish's signalling and ICE")
	fs.StringVar(&c.Label, "label", "", "name of the run in the JSON line")
	fs.BoolVar(&c.AnyInterface, "any-interface", false, "let ICE use every interface (default: loopback only)")
	fs.StringVar(&c.RTMPListen, "rtmp-listen", "", "run an RTMP server on host:port that the gateway pushes to (whipcast: restream rtmp://ADDR/live/{stream}) and report what each stream carried")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	switch {
	case c.N < 1:
		return c, fmt.Errorf("%w: -n must be at least 1", ErrUsage)
	case c.Duration <= 0:
		return c, fmt.Errorf("%w: -duration must be positive", ErrUsage)
	case c.Retry < 0:
		return c, fmt.Errorf("%w: -retry must not be negative", ErrUsage)
	case c.FPS < 1:
		return c, fmt.Errorf("%w: -fps must be at least 1", ErrUsage)
	case c.Phase != "spread" && c.Phase != "aligned":
		return c, fmt.Errorf("%w: -phase is spread or aligned, not %q", ErrUsage, c.Phase)
	case c.WHIP == "":
		return c, fmt.Errorf("%w: -whip is needed", ErrUsage)
	}
	if c.Video == genVideo {
		if !reGenSize.MatchString(c.GenSize) {
			return c, fmt.Errorf("%w: -gen-size is WIDTHxHEIGHT, not %q", ErrUsage, c.GenSize)
		}
		b, err := parseBitrate(*genBitrate)
		if err != nil {
			return c, err
		}
		c.GenBitrate = b
	}
	if c.RTMPListen != "" {
		if _, _, err := net.SplitHostPort(c.RTMPListen); err != nil {
			return c, fmt.Errorf("%w: -rtmp-listen is host:port: %v", ErrUsage, err)
		}
	}
	return c, nil
}

// offset is when publisher i starts after the first.
func (c Config) offset(i int) time.Duration {
	if c.Phase == "aligned" {
		return 0
	}
	return time.Duration(i) * c.GOP / time.Duration(c.N)
}
