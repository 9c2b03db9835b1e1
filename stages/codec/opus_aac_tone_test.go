//go:build !nocodec

package codec

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOpusToAACTone checks what a listener would: the transcoded 440 Hz tone
// is still a 440 Hz tone at the source's level, with no more noise and
// distortion than the source has plus 2 dB. A change of
// encoder, coder, bandwidth or bitrate that hurts the sound fails here. The
// reference is the source Opus decoded by ffmpeg; the AAC is decoded by
// ffmpeg too (no errors allowed), so the comparison is of what players get.
func TestOpusToAACTone(t *testing.T) {
	const maxSNRLoss = 2.0 // dB
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	for _, tc := range []struct {
		file     string
		channels int
	}{
		{"av.ogg", 2},
		{"av-mono.ogg", 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			bitrate := DefaultAACBitrate
			if tc.channels == 1 {
				bitrate = MonoBitrate(bitrate)
			}
			tr, err := NewOpusToAAC(AACSettings{Bitrate: bitrate, Channels: tc.channels})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			var file []byte
			for i, p := range opusPacketsOf(t, tc.file) {
				out, err := tr.Transcode(p, int64(i)*960)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range out {
					file = append(file, adts(o.Data, tc.channels)...)
				}
			}
			rest, err := tr.Flush()
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range rest {
				file = append(file, adts(o.Data, tc.channels)...)
			}
			path := filepath.Join(t.TempDir(), "tone.aac")
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			src := decodePCM(t, filepath.Join("../../testdata", tc.file), tc.channels)
			got := decodePCM(t, path, tc.channels)
			for c := 0; c < tc.channels; c++ {
				sf, sl, ssnr := toneStats(src[c])
				gf, gl, gsnr := toneStats(got[c])
				t.Logf("channel %d: source %.1f Hz %.2f dBFS SNR %.1f dB; AAC %.1f Hz %.2f dBFS SNR %.1f dB", c, sf, sl, ssnr, gf, gl, gsnr)
				if gf != sf {
					t.Errorf("channel %d: AAC's strongest frequency %.1f Hz, source's %.1f Hz", c, gf, sf)
				}
				if math.Abs(gl-sl) > 0.5 {
					t.Errorf("channel %d: AAC tone at %.2f dBFS, source at %.2f dBFS (more than 0.5 dB apart)", c, gl, sl)
				}
				// Today's settings lose 0.1 dB against the Opus decode (46.4
				// against 46.5 dB); 16 kb/s stereo loses 4.6 dB and fails.
				if gsnr < ssnr-maxSNRLoss {
					t.Errorf("channel %d: AAC tone-to-noise %.1f dB, source %.1f dB: more than %.0f dB lost", c, gsnr, ssnr, maxSNRLoss)
				}
			}
		})
	}
}

// decodePCM decodes an audio file with ffmpeg to 48 kHz float samples, one
// slice per channel; any message from the decoder fails the test.
func decodePCM(t *testing.T, path string, channels int) [][]float64 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "f32le", "-ar", "48000", "-ac", string(rune('0'+channels)), "-")
	var stderr []byte
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { stderr = append(stderr, p...); return len(p), nil })
	raw, err := cmd.Output()
	if err != nil || len(stderr) != 0 {
		t.Fatalf("ffmpeg %s: %v %s", path, err, stderr)
	}
	n := len(raw) / 4 / channels
	out := make([][]float64, channels)
	for c := range out {
		out[c] = make([]float64, n)
		for i := 0; i < n; i++ {
			out[c][i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(i*channels+c):])))
		}
	}
	return out
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// toneStats looks at the middle 8 s of x (48 kHz): the frequency between
// 400 and 480 Hz (10 Hz steps) with the most energy, that component's level in dBFS (RMS of a
// full-scale sine = 0 dBFS), and the ratio of its energy to everything else
// (noise, distortion, other tones) in dB. 8 s hold a whole number of periods
// of every 10 Hz step, so the projections are exact.
func toneStats(x []float64) (freq, level, snr float64) {
	const rate, start, n = 48000, 48000, 8 * 48000
	if len(x) < start+n {
		return 0, math.Inf(-1), 0
	}
	w := x[start : start+n]
	best, bestA, bestB := 0.0, 0.0, 0.0
	for f := 400.0; f <= 480; f += 10 {
		var a, b float64
		for i, v := range w {
			s, c := math.Sincos(2 * math.Pi * f * float64(i) / rate)
			a += v * s
			b += v * c
		}
		a, b = 2*a/n, 2*b/n
		if e := a*a + b*b; e > bestA*bestA+bestB*bestB {
			best, bestA, bestB = f, a, b
		}
	}
	var total, resid float64
	for i, v := range w {
		s, c := math.Sincos(2 * math.Pi * best * float64(i) / rate)
		r := v - bestA*s - bestB*c
		total += v * v
		resid += r * r
	}
	tone := total - resid
	return best, 10 * math.Log10(tone/float64(n)*2), 10 * math.Log10(tone/resid)
}
