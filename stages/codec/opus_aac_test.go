//go:build !nocodec

package codec

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// opusPackets reads the Opus packets of the committed fixture with their
// granule-derived start times (48 kHz samples).
func opusPackets(t testing.TB) (pkts [][]byte) {
	t.Helper()
	return opusPacketsOf(t, "av.ogg")
}

// opusPacketsOf reads the Opus packets of testdata/name.
func opusPacketsOf(t testing.TB, name string) (pkts [][]byte) {
	t.Helper()
	f, err := os.Open(filepath.Join("../../testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return pkts
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(page) >= 8 && (string(page[:8]) == "OpusHead" || string(page[:8]) == "OpusTags") {
			continue
		}
		pkts = append(pkts, page)
	}
}

// adts prefixes one raw AAC-LC frame with an ADTS header (ISO/IEC 13818-7 6.2).
func adts(frame []byte, channels int) []byte {
	const profile, freqIdx = 1, 3 // AAC LC, 48 kHz
	n := len(frame) + 7
	h := []byte{0xFF, 0xF1,
		byte(profile<<6 | freqIdx<<2 | channels>>2),
		byte((channels&3)<<6 | (n >> 11)),
		byte(n >> 3),
		byte((n&7)<<5 | 0x1F),
		0xFC}
	return append(h, frame...)
}

func TestOpusToAAC(t *testing.T) {
	pkts := opusPackets(t)
	if len(pkts) < 500 {
		t.Fatalf("fixture has %d packets, want 500 or so", len(pkts))
	}
	tc, err := NewOpusToAAC(AACSettings{Bitrate: 96000})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	f := tc.Format()
	// AudioSpecificConfig: object type 2 (LC), frequency index 3 (48 kHz), 2 channels.
	if len(f.Config) < 2 || binary.BigEndian.Uint16(f.Config)>>11 != 2 || (f.Config[0]&7)<<1|f.Config[1]>>7 != 3 || (f.Config[1]>>3)&0xF != 2 {
		t.Fatalf("AudioSpecificConfig %x is not AAC-LC 48 kHz stereo", f.Config)
	}
	const start = 480000 // a stream timeline that does not start at zero
	var out []Packet
	for i, p := range pkts {
		got, err := tc.Transcode(p, start+int64(i)*960)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	rest, err := tc.Flush()
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, rest...)
	if len(out) == 0 {
		t.Fatal("no AAC packets")
	}
	if out[0].PTS != start-int64(f.Delay) || f.Delay != 1024 {
		t.Errorf("first AAC packet at %d with delay %d; want %d (priming before the first input sample)", out[0].PTS, f.Delay, start-1024)
	}
	for i := 1; i < len(out); i++ {
		if out[i].PTS != out[i-1].PTS+1024 {
			t.Fatalf("packet %d at %d follows %d: not contiguous", i, out[i].PTS, out[i-1].PTS)
		}
	}
	end := out[len(out)-1].PTS + 1024 - start
	if want := int64(len(pkts)) * 960; end < want || end > want+2048 {
		t.Errorf("AAC covers %d samples after the start, want ~%d", end, int64(len(pkts))*960)
	}

	path := filepath.Join(t.TempDir(), "out.aac")
	var file []byte
	for _, p := range out {
		file = append(file, adts(p.Data, 2)...)
	}
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	// Count decoded samples: ADTS has no duration header, so decode it all.
	o, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
		"stream=codec_name,profile,sample_rate,channels", "-of", "compact=p=0:nk=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, o)
	}
	if got := strings.TrimSpace(string(o)); got != "aac|LC|48000|2" {
		t.Errorf("ffprobe says %q, want aac|LC|48000|2", got)
	}
	o, err = exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "a",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, o)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(o)))
	if dur := float64(n*1024-f.Delay) / 48000; dur < 9.95 || dur > 10.05 {
		t.Errorf("decoded %d frames = %.3f s without priming, want 10 s", n, dur)
	}
	if o, _ := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); len(o) != 0 {
		t.Errorf("ffmpeg decode errors: %s", o)
	}
}

// BenchmarkOpusToAAC is the CPU cost of one 20 ms Opus packet through
// decode → regroup → AAC encode, for the stereo and the mono fixture, with
// the encoder options we use and with the ones we measured against.
// cores/stream is CPU seconds (getrusage, this process) per second of
// audio; ns/op is wall time per packet.
func BenchmarkOpusToAAC(b *testing.B) {
	ours := aacOptions
	defer func() { aacOptions = ours }()
	variants := []struct {
		name string
		opts [][2]string
	}{
		{"ours", ours},
		{"twoloop", nil}, // FFmpeg 5.1's defaults
		{"fast", [][2]string{{"aac_coder", "fast"}}},
		{"fast-ms0", [][2]string{{"aac_coder", "fast"}, {"aac_ms", "0"}}},
		{"fast-tools-off", [][2]string{{"aac_coder", "fast"}, {"aac_ms", "0"}, {"aac_is", "0"}, {"aac_pns", "0"}, {"aac_tns", "0"}}},
	}
	for _, src := range []struct{ name, file string }{{"stereo", "av.ogg"}, {"mono", "av-mono.ogg"}} {
		pkts := opusPacketsOf(b, src.file)
		for _, ch := range []int{0, 2} { // 0: follow the source
			channels, chName := ch, "as-source"
			if ch == 0 {
				channels = 2
				if src.name == "mono" {
					channels = 1
				}
			} else {
				if src.name == "stereo" {
					continue // the same as as-source
				}
				chName = "to-stereo"
			}
			for _, v := range variants {
				b.Run(src.name+"/"+chName+"/"+v.name, func(b *testing.B) {
					aacOptions = v.opts
					bitrate := DefaultAACBitrate
					if channels == 1 {
						bitrate = MonoBitrate(bitrate)
					}
					tc, err := NewOpusToAAC(AACSettings{Bitrate: bitrate, Channels: channels})
					aacOptions = ours
					if err != nil {
						b.Fatal(err)
					}
					defer tc.Close()
					b.ReportAllocs()
					b.ResetTimer()
					cpu0 := cpuSeconds()
					for i := 0; i < b.N; i++ {
						if _, err := tc.Transcode(pkts[i%len(pkts)], int64(i)*960); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric((cpuSeconds()-cpu0)/(float64(b.N)*0.020), "cores/stream")
				})
			}
		}
	}
}

// cpuSeconds is this process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func TestBadSettings(t *testing.T) {
	if _, err := NewOpusToAAC(AACSettings{Bitrate: 1000}); !errors.Is(err, ErrBadSettings) {
		t.Fatalf("got %v, want ErrBadSettings", err)
	}
}

// BenchmarkOpusDecode is the floor under BenchmarkOpusToAAC: FFmpeg's Opus
// decoder alone, to the channel count the transcoder would use.
func BenchmarkOpusDecode(b *testing.B) {
	for _, src := range []struct {
		name, file string
		layout     astiav.ChannelLayout
	}{{"stereo", "av.ogg", astiav.ChannelLayoutStereo}, {"mono", "av-mono.ogg", astiav.ChannelLayoutMono}} {
		b.Run(src.name, func(b *testing.B) {
			pkts := opusPacketsOf(b, src.file)
			dec, err := openOpusDecoderLayout(src.layout)
			if err != nil {
				b.Fatal(err)
			}
			defer dec.Free()
			pkt, frame := astiav.AllocPacket(), astiav.AllocFrame()
			defer pkt.Free()
			defer frame.Free()
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				if err := pkt.FromData(pkts[i%len(pkts)]); err != nil {
					b.Fatal(err)
				}
				err := dec.SendPacket(pkt)
				pkt.Unref()
				if err != nil {
					b.Fatal(err)
				}
				for dec.ReceiveFrame(frame) == nil {
					frame.Unref()
				}
			}
			b.ReportMetric((cpuSeconds()-cpu0)/(float64(b.N)*0.020), "cores/stream")
		})
	}
}

// TestOpusToAACMono: a mono transcoder has a mono AudioSpecificConfig and
// takes stereo packets too (the decoder downmixes them), with frames that
// follow the input timeline; and a gap of lost packets longer than
// gapTolerance is filled with silence, so the timeline holds.
func TestOpusToAACMono(t *testing.T) {
	pkts := opusPacketsOf(t, "av.ogg") // stereo packets
	tc, err := NewOpusToAAC(AACSettings{Bitrate: MonoBitrate(0), Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	f := tc.Format()
	if f.Channels != 1 || len(f.Config) < 2 || (f.Config[1]>>3)&0xF != 1 {
		t.Fatalf("format %+v: AudioSpecificConfig %x is not mono", f, f.Config)
	}
	var out []Packet
	for i, p := range pkts[:250] {
		if i >= 100 && i < 110 {
			continue // 200 ms lost: filled with silence
		}
		got, err := tc.Transcode(p, int64(i)*960)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	rest, err := tc.Flush()
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, rest...)
	for i := 1; i < len(out); i++ {
		if out[i].PTS != out[i-1].PTS+1024 {
			t.Fatalf("packet %d at %d follows %d", i, out[i].PTS, out[i-1].PTS)
		}
	}
	if end := out[len(out)-1].PTS + 1024; end < 250*960 || end > 250*960+1024 {
		t.Errorf("AAC ends at %d, want %d (the lost packets' gap filled)", end, 250*960)
	}
	var file []byte
	for _, p := range out {
		file = append(file, adts(p.Data, 1)...)
	}
	path := filepath.Join(t.TempDir(), "mono.aac")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	o, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
		"stream=codec_name,channels", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(o)) != "aac,1" {
		t.Errorf("ffprobe: %v %q, want aac,1", err, o)
	}
	if o, _ := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); len(o) != 0 {
		t.Errorf("ffmpeg decode errors: %s", o)
	}
}
