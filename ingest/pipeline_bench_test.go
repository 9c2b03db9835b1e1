package ingest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/packager"
	"github.com/whipcast/whipcast/transmux"
)

// endSignal is a transmux consumer that reports the end of each stream.
type endSignal chan struct{}

func (endSignal) OnInit(*transmux.Init)       {}
func (endSignal) OnPart(*transmux.Part)       {}
func (endSignal) OnSegment(*transmux.Segment) {}
func (e endSignal) OnEnd(error)               { e <- struct{}{} }

func loadOpus(tb testing.TB) [][]byte {
	tb.Helper()
	f, err := os.Open("../testdata/av.ogg")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) > 8 && (string(page[:8]) == "OpusHead" || string(page[:8]) == "OpusTags") {
			continue
		}
		out = append(out, page)
	}
	return out
}

// BenchmarkPipeline runs the whole per-packet path of one publish, exactly as
// a session drives it, on the fixture (10 s of 320x240 H.264 + Opus): RTP
// packets → reorder → depacketize → timeline → media.Stream → transmux (CMAF
// parts and segments, on the Service's goroutine) → LL-HLS playlist rendered
// over HTTP. One op is the whole 10 s fixture; the time includes waiting for
// the transmuxer to finish, so it is the real cost of 10 s of media.
func BenchmarkPipeline(b *testing.B) {
	aus := loadFixture(b)
	vpkts := packetize(b, aus, 1200)
	opus := loadOpus(b)
	var bytesPerOp int64
	for _, p := range vpkts {
		bytesPerOp += int64(len(p.Payload))
	}
	for _, p := range opus {
		bytesPerOp += int64(len(p))
	}

	reg := media.NewRegistry()
	defer reg.Close()
	// The benchmark writes 10 s of media in well under 10 ms: a queue that
	// holds the whole op keeps the transmuxer from being dropped as a slow
	// reader, which at real-time rates it never is.
	sv := transmux.NewService(transmux.Settings{ReaderQueue: 2048}, nil)
	defer sv.Close()
	hls := packager.NewHLS(packager.HLSSettings{}, nil)
	defer hls.Close()
	hls.Attach(sv)
	ended := make(endSignal, 1)
	sv.AddConsumer(func(*media.Stream) transmux.Sink { return ended })
	sv.Pin(func(*media.Stream) bool { return true }) // packaged from publish, as a recording would
	sv.Attach(reg)

	b.SetBytes(bytesPerOp)
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		video := &media.Track{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}
		audio := &media.Track{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}
		s, err := reg.Publish("bench", []*media.Track{video, audio}, nil)
		if err != nil {
			b.Fatal(err)
		}
		tl := NewTimeline(90000, 48000)
		var arrival time.Time
		dp := newH264Depacketizer(func(u h264Unit) {
			dts, wall := tl.Frame(0, u.ts, arrival)
			s.Write(&media.Frame{Track: video, DTS: dts, PTS: dts, Keyframe: u.keyframe, Config: u.config, Data: u.data, Time: wall})
		}, nil)
		rb := newReorderBuffer(func(ts uint32, marker bool, payload []byte, gap bool, at time.Time) {
			arrival = at
			dp.push(ts, marker, payload, gap)
		})
		od := &opusDepacketizer{emit: func(ts uint32, data []byte) {
			dts, wall := tl.Frame(1, ts, arrival)
			s.Write(&media.Frame{Track: audio, DTS: dts, PTS: dts, Keyframe: true, Data: data, Time: wall})
		}}
		// Interleave as on the wire: ~36 video packets and 50 Opus packets
		// per second of media, with arrival times following the media clock.
		ai := 0
		for i, p := range vpkts {
			arrival = start.Add(time.Duration(i) * 10 * time.Second / time.Duration(len(vpkts)))
			rb.push(p.SequenceNumber, p.Timestamp, p.Marker, p.Payload, false, arrival)
			for ai < len(opus) && ai*len(vpkts) <= i*len(opus) {
				od.push(uint32(ai*960), opus[ai])
				ai++
			}
		}
		for ; ai < len(opus); ai++ {
			od.push(uint32(ai*960), opus[ai])
		}
		rb.flushAll()
		reg.Unpublish(s)
		<-ended
		rec := httptest.NewRecorder()
		hls.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/bench/video.m3u8", nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "#EXT-X-ENDLIST") {
			fr, by := s.Stats()
			b.Fatalf("playlist: %d frames=%d bytes=%d\n%s", rec.Code, fr, by, rec.Body.String())
		}
	}
	perPacket := float64(b.Elapsed().Nanoseconds()) / float64(b.N*(len(vpkts)+len(opus)))
	b.ReportMetric(perPacket, "ns/packet")
	// CPU share of one core for a live stream of this bitrate: time per op
	// over the 10 s of media one op carries.
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10e9, "cores/stream")
}
