//go:build !nocodec

package stages

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages/codec"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// TestAACStageChannels: the AAC the stage makes has the source's channel
// count, read from the first Opus packet's TOC: a mono source (as browsers
// send it, on an opus/48000/2 track) gives mono AAC, a stereo one stereo;
// a stereo packet in a stream that began mono is downmixed, not a new
// config. ffprobe reads the result back: codec, channels and duration.
func TestAACStageChannels(t *testing.T) {
	mono := loadOpus(t, "av-mono.ogg")
	stereo := loadOpus(t, "av.ogg")
	for _, tc := range []struct {
		name     string
		pkts     [][]byte
		channels int
	}{
		{"mono", mono, 1},
		{"stereo", stereo, 2},
		// 5 s mono, then 5 s of stereo packets: stays mono.
		{"mono-then-stereo", append(append([][]byte{}, mono[:250]...), stereo[250:500]...), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames := runStage(t, tc.pkts)
			if len(frames) == 0 {
				t.Fatal("no AAC frames")
			}
			var asc mpeg4audio.AudioSpecificConfig
			if err := asc.Unmarshal(frames[0].Config.AudioSpecificConfig); err != nil {
				t.Fatal(err)
			}
			if int(asc.ChannelConfig) != tc.channels || asc.SampleRate != 48000 || asc.Type != mpeg4audio.ObjectTypeAACLC {
				t.Fatalf("AudioSpecificConfig %+v, want AAC-LC 48 kHz, %d channels", asc, tc.channels)
			}
			for _, f := range frames {
				if f.Config != frames[0].Config {
					t.Fatal("the AAC config changed mid-stream")
				}
			}
			if frames[0].Track.Channels != 0 {
				t.Errorf("derived track says %d channels; the AudioSpecificConfig is the truth", frames[0].Track.Channels)
			}
			probeADTS(t, frames, tc.channels, float64(len(tc.pkts))*0.020)
		})
	}
}

// runStage writes pkts as the Opus track of a source (with one video frame
// first) and returns the AAC frames of the derived stream.
func runStage(t *testing.T, pkts [][]byte) []*media.Frame {
	t.Helper()
	video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
	audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
	src := media.NewStream("cam", []*media.Track{video, audio}, nil)
	a := NewAAC(codec.AACSettings{}, nil)
	d, release, err := a.Acquire(src)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rd := d.Subscribe("test", 0)
	defer rd.Close()
	cfg := &media.Config{SPS: []byte{0x67}, PPS: []byte{0x68}}
	src.Write(&media.Frame{Track: video, Keyframe: true, Config: cfg, Data: []byte{0, 0, 0, 1, 0x65}})
	for i, p := range pkts {
		src.Write(&media.Frame{Track: audio, DTS: int64(i) * 960, PTS: int64(i) * 960, Keyframe: true, Data: p})
	}
	src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*media.Frame
	for {
		f, err := rd.Read(ctx)
		if errors.Is(err, media.ErrStreamEnded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Track.Codec == media.CodecAAC {
			out = append(out, f)
		}
	}
}

// probeADTS writes the frames as an ADTS file and checks what ffprobe and
// ffmpeg make of it: AAC with the channel count, the duration (decoded
// sample count less the encoder's priming), no decode errors.
func probeADTS(t *testing.T, frames []*media.Frame, channels int, seconds float64) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	var file []byte
	for _, f := range frames {
		n := len(f.Data) + 7
		// ISO/IEC 13818-7 6.2: AAC LC (profile 1), 48 kHz (index 3).
		file = append(file, 0xFF, 0xF1, byte(1<<6|3<<2|channels>>2), byte((channels&3)<<6|n>>11), byte(n>>3), byte((n&7)<<5|0x1F), 0xFC)
		file = append(file, f.Data...)
	}
	path := filepath.Join(t.TempDir(), "out.aac")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "a", "-show_entries",
		"stream=codec_name,channels,nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, o)
	}
	parts := strings.Split(strings.TrimSpace(string(o)), ",")
	if len(parts) != 3 || parts[0] != "aac" || parts[1] != strconv.Itoa(channels) {
		t.Fatalf("ffprobe says %q, want aac with %d channels", o, channels)
	}
	n, _ := strconv.Atoi(parts[2])
	if dur := float64(n*1024-1024) / 48000; dur < seconds-0.05 || dur > seconds+0.05 {
		t.Errorf("decoded %d frames = %.3f s without priming, want %.3f s", n, dur, seconds)
	}
	if o, _ := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); len(o) != 0 {
		t.Errorf("ffmpeg decode errors: %s", o)
	}
	// The fixtures are a 440 Hz tone at -18 dBFS or so: not silence (a
	// downmix that cancelled or a channel left empty would show here).
	o, _ = exec.Command("ffmpeg", "-hide_banner", "-i", path, "-af", "volumedetect", "-f", "null", "-").CombinedOutput()
	_, after, ok := strings.Cut(string(o), "mean_volume: ")
	db, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.SplitN(after, "\n", 2)[0], " dB")), 64)
	if !ok || err != nil || db < -30 {
		t.Errorf("mean volume %q (%v): want the tone, not silence", strings.SplitN(after, "\n", 2)[0], err)
	}
}

func loadOpus(t *testing.T, name string) [][]byte {
	t.Helper()
	fx, err := transmuxtest.Load("../testdata/av.h264", "../testdata/"+name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range fx.AudioFrames {
		out = append(out, f.Data)
	}
	if len(out) < 500 {
		t.Fatalf("%s: %d packets", name, len(out))
	}
	return out[:500]
}
