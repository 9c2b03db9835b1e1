package ingest

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// FuzzH264Depacketize feeds arbitrary bytes as a sequence of RTP payloads:
// each record is [len:2][flags:1][payload]; flags bit0 = marker, bit1 = new
// timestamp, bit2 = gap. Whatever comes out must be well-formed AVCC without
// parameter sets, and nothing may panic.
func FuzzH264Depacketize(f *testing.F) {
	for _, seed := range smallH264Seeds(f) {
		f.Add(seed)
	}
	f.Add([]byte{0, 3, 1, 24, 0, 9})
	f.Add([]byte{0, 3, 1, 28, 0x85, 1, 0, 3, 1, 28, 0x45, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		var units []h264Unit
		d := newH264Depacketizer(func(u h264Unit) { units = append(units, u) }, func() {})
		ts := uint32(0)
		for len(data) >= 3 {
			n := int(binary.BigEndian.Uint16(data))
			flags := data[2]
			data = data[3:]
			n = min(n, len(data))
			if flags&2 != 0 {
				ts += 3000
			}
			d.push(ts, flags&1 != 0, data[:n], flags&4 != 0)
			data = data[n:]
		}
		for _, u := range units {
			b := u.data
			if len(b) == 0 {
				t.Fatal("empty unit")
			}
			if u.keyframe && u.config == nil {
				t.Fatal("keyframe without config")
			}
			for len(b) > 0 {
				if len(b) < 5 {
					t.Fatalf("truncated AVCC")
				}
				n := int(binary.BigEndian.Uint32(b))
				if n == 0 || n > len(b)-4 {
					t.Fatalf("bad AVCC length %d", n)
				}
				if typ := b[4] & 0x1f; typ == 7 || typ == 8 || typ == 9 {
					t.Fatalf("NAL type %d in payload", typ)
				}
				b = b[4+n:]
			}
		}
	})
}

// FuzzCheckOffer: the offer check never panics and only returns its own
// errors.
func FuzzCheckOffer(f *testing.F) {
	f.Add(crlf(testOffer))
	f.Add(crlf(testOfferVP8Only))
	f.Add("v=0\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, offer string) {
		_, err := checkOffer(offer)
		if err != nil && !errors.Is(err, ErrBadOffer) && !errors.Is(err, ErrNoVideoCodec) && !errors.Is(err, ErrNoAudioCodec) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzParseTrickle: the fragment parser never panics, and every candidate
// it returns starts with "candidate:".
func FuzzParseTrickle(f *testing.F) {
	f.Add(crlf(testTrickle))
	f.Add("a=end-of-candidates\r\n")
	f.Add("a=ice-ufrag:x\r\na=ice-pwd:y\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n")
	f.Fuzz(func(t *testing.T, frag string) {
		fr, err := parseTrickle(frag)
		if err != nil {
			if !errors.Is(err, ErrBadTrickle) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for _, c := range fr.candidates {
			if len(c.candidate) < 10 || c.candidate[:10] != "candidate:" {
				t.Fatalf("candidate %q", c.candidate)
			}
		}
	})
}

// TestWriteFuzzSeeds refreshes the committed seed corpus under
// testdata/fuzz when run with -update-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	write := func(fuzz, name, value string) {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, seed := range smallH264Seeds(t) {
		write("FuzzH264Depacketize", fmt.Sprintf("fixture-%d", i), "[]byte("+strconv.Quote(string(seed))+")")
	}
	write("FuzzH264Depacketize", "fu-a-unterminated", "[]byte("+strconv.Quote("\x00\x03\x01\x1c\x85\x01\x00\x03\x05\x1c\x45\x02")+")")
	write("FuzzCheckOffer", "chromium-like", "string("+strconv.Quote(crlf(testOffer))+")")
	write("FuzzCheckOffer", "vp8-only", "string("+strconv.Quote(crlf(testOfferVP8Only))+")")
	write("FuzzCheckOffer", "no-opus", "string("+strconv.Quote(crlf(testOfferNoOpus))+")")
	write("FuzzParseTrickle", "candidate", "string("+strconv.Quote(crlf(testTrickle))+")")
	q := strconv.Quote
	for name, s := range map[string][3]string{
		"trickle":     {`"ID"`, "application/trickle-ice-sdpfrag", crlf(testTrickle)},
		"end":         {"", "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n"},
		"restart":     {"*", "application/trickle-ice-sdpfrag", "a=ice-ufrag:new1\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"},
		"stale-etag":  {`"stale"`, "application/trickle-ice-sdpfrag", crlf(testTrickle)},
		"not-sdpfrag": {"", "text/plain", "hello"},
	} {
		write("FuzzWHIPPatch", name, "string("+q(s[0])+")\nstring("+q(s[1])+")\nstring("+q(s[2])+")")
	}
	for i, seed := range publisherSeeds(t) {
		write("FuzzPublisherAudioRTCP", fmt.Sprintf("seed-%d", i), "[]byte("+strconv.Quote(string(seed))+")")
	}
	write("FuzzParseTrickle", "restart", "string("+strconv.Quote("a=ice-ufrag:new\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n")+")")
}

// smallH264Seeds makes short depacketizer inputs from the fixture: its
// SPS/PPS, an IDR and a P slice cut to 200 bytes, sent as single NAL units,
// STAP-A and FU-A. Short seeds keep the fuzzer fast.
func smallH264Seeds(tb testing.TB) [][]byte {
	aus := loadFixture(tb)[:2]
	var short []fixtureAU
	for _, au := range aus {
		var s fixtureAU
		s.idr = au.idr
		for _, n := range au.nalus {
			s.nalus = append(s.nalus, n[:min(len(n), 200)])
		}
		short = append(short, s)
	}
	var seeds [][]byte
	for _, mtu := range []uint16{1200, 80} {
		var seed []byte
		var last uint32
		for i, p := range packetize(tb, short, mtu) {
			flags := byte(0)
			if p.Marker {
				flags |= 1
			}
			if i > 0 && p.Timestamp != last {
				flags |= 2
			}
			last = p.Timestamp
			seed = binary.BigEndian.AppendUint16(seed, uint16(len(p.Payload)))
			seed = append(seed, flags)
			seed = append(seed, p.Payload...)
		}
		seeds = append(seeds, seed)
	}
	return seeds
}
