//go:build !nocodec

package codec

import "testing"

// TestOpusFilterGain runs the tone through volume=1 and volume=0: the same
// number of 20 ms packets come out, and silence (gain 0) encodes to tiny
// packets, so the gain reached the samples.
func TestOpusFilterGain(t *testing.T) {
	in := opusPackets(t)
	sizes := map[string]int{}
	for _, g := range []string{"1", "0"} {
		tc, err := NewOpusFilter("[in]volume="+g+"[out]", 0)
		if err != nil {
			t.Fatal(err)
		}
		var n, bytes int
		last := int64(-1 << 62)
		for i, p := range in {
			pkts, err := tc.Transcode(p, int64(i)*960)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range pkts {
				if o.PTS <= last {
					t.Fatalf("gain %s: PTS %d after %d", g, o.PTS, last)
				}
				last = o.PTS
				n++
				bytes += len(o.Data)
			}
		}
		tc.Close()
		if n < len(in)-5 || n > len(in)+5 {
			t.Fatalf("gain %s: %d packets out of %d", g, n, len(in))
		}
		sizes[g] = bytes / n
	}
	if sizes["0"]*5 > sizes["1"] {
		t.Fatalf("mean packet size: gain 0 %d B, gain 1 %d B: gain had no effect", sizes["0"], sizes["1"])
	}
	t.Logf("mean Opus packet: gain 1 %d B, gain 0 %d B", sizes["1"], sizes["0"])
}
