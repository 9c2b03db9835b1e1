package ingest

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// publisherRecords splits a fuzz input into what a publisher sends:
// records of [kind:1][dt:1][len:2][bytes], kind bit0 = RTCP (else RTP),
// bit1 = the RTCP is for the video track, dt = milliseconds since the
// previous record's arrival.
func publisherRecords(b []byte, each func(rtcpPkt, video bool, dt time.Duration, data []byte)) {
	for len(b) >= 4 {
		kind, dt, n := b[0], b[1], int(binary.BigEndian.Uint16(b[2:4]))
		b = b[4:]
		if n > len(b) {
			n = len(b)
		}
		each(kind&1 != 0, kind&2 != 0, time.Duration(dt)*time.Millisecond, b[:n])
		b = b[n:]
	}
}

// FuzzPublisherAudioRTCP runs what a publisher's Opus RTP and its RTCP hit
// in a session, in the order the network gives them: the header cache
// interceptor, the RTP parse, the audio reorder buffer, the Opus
// depacketizer and the timeline (Session.readRTP's audio path), and the
// RTCP parse with every Sender Report given to the timeline
// (Session.readRTCP). Nothing may panic; every frame out is a payload
// that came in, with a DTS that only increases; what the header cache
// hands on is the header of the packet read.
func FuzzPublisherAudioRTCP(f *testing.F) {
	for _, s := range publisherSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		tl := NewTimeline(90000, 48000)
		now := time.Unix(1_800_000_000, 0)
		arrival := now
		payloads := map[string]bool{}
		var lastDTS int64
		haveDTS := false
		dp := &opusDepacketizer{slab: slab{max: audioSlabSize}}
		dp.emit = func(ts uint32, data []byte) {
			if len(data) == 0 || !payloads[string(data)] {
				t.Fatalf("frame %x is no payload that came in", data)
			}
			dts, _ := tl.Frame(trackAudio, ts, arrival)
			if haveDTS && dts <= lastDTS {
				t.Fatalf("DTS %d after %d", dts, lastDTS)
			}
			lastDTS, haveDTS = dts, true
		}
		rb := newReorderBufferSize(func(ts uint32, _ bool, payload []byte, _ bool, at time.Time) {
			arrival = at
			dp.push(ts, payload)
		}, reorderAudioSlots)
		rb.fixedWait = reorderAudioWait

		var cur []byte // what the fake network read returns
		read := (&headerCache{}).BindRemoteStream(&interceptor.StreamInfo{MimeType: "audio/opus"},
			interceptor.RTPReaderFunc(func(b []byte, _ interceptor.Attributes) (int, interceptor.Attributes, error) {
				return copy(b, cur), nil, nil
			}))
		buf := make([]byte, 1500)
		var pkt rtp.Packet
		publisherRecords(in, func(isRTCP, video bool, dt time.Duration, data []byte) {
			now = now.Add(dt)
			if isRTCP {
				pkts, err := rtcp.Unmarshal(data)
				if err != nil {
					return
				}
				track := trackAudio
				if video {
					track = trackVideo
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						tl.SenderReport(track, sr.NTPTime, sr.RTPTime, now)
					}
				}
				return
			}
			cur = data
			n, attrs, _ := read.Read(buf, nil)
			if hdr, err := attrs.GetRTPHeader(buf[:n]); err == nil {
				var want rtp.Header
				if _, err := want.Unmarshal(buf[:n]); err != nil || hdr.SequenceNumber != want.SequenceNumber ||
					hdr.Timestamp != want.Timestamp || hdr.SSRC != want.SSRC {
					t.Fatalf("cached header %+v, the packet's %+v (%v)", hdr, want, err)
				}
			}
			if err := pkt.Unmarshal(buf[:n]); err != nil {
				return
			}
			if len(pkt.Payload) > 0 {
				payloads[string(pkt.Payload)] = true
			}
			rb.push(pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload, false, now)
			rb.tick(now)
		})
		rb.flushAll()
	})
}

// publisherSeeds are 20 ms Opus packets with a Sender Report for each
// track every 5 packets, then the same with a lost, a reordered and a
// duplicated packet, a sequence wrap and an SR whose clock runs at twice
// the RTP rate (issue 11's lying sender).
func publisherSeeds(tb testing.TB) [][]byte {
	rec := func(out []byte, kind, dt byte, data []byte) []byte {
		out = append(out, kind, dt)
		out = binary.BigEndian.AppendUint16(out, uint16(len(data)))
		return append(out, data...)
	}
	opus := func(seq uint16, ts uint32) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: 0x1234}, Payload: []byte{0xfc, byte(seq), 0x01, 0x02}}
		b, err := p.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	sr := func(ssrc uint32, ntp time.Time, rtpTS uint32) []byte {
		b, err := (&rtcp.SenderReport{SSRC: ssrc, NTPTime: timeToNTP(ntp), RTPTime: rtpTS, PacketCount: 5, OctetCount: 100}).Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		rr, _ := (&rtcp.ReceiverReport{SSRC: ssrc}).Marshal()
		return append(b, rr...)
	}
	t0 := time.Unix(1_800_000_000, 0)
	var clean, rough []byte
	for i := range 20 {
		seq, ts := uint16(65530+i), uint32(i*960)
		clean = rec(clean, 0, 20, opus(seq, ts))
		if i%5 == 4 {
			at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
			clean = rec(clean, 1, 0, sr(0x1234, at, ts))
			clean = rec(clean, 3, 0, sr(0x5678, at, uint32(i)*1800))
		}
	}
	for i, j := range []int{0, 1, 3, 2, 2, 5, 6, 8, 9, 7} {
		rough = rec(rough, 0, 20, opus(uint16(j), uint32(j*960)))
		if i%4 == 3 {
			rough = rec(rough, 1, 0, sr(0x1234, t0.Add(time.Duration(i)*40*time.Millisecond), uint32(j*960)))
		}
	}
	return [][]byte{clean, rough, rec(nil, 1, 0, bytes.Repeat([]byte{0x80}, 8))}
}
