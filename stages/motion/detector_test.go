//go:build !nocodec

package motion

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/whipcast/whipcast/media"
)

// publish writes an Annex-B fixture (one slice per picture, 30 fps) into a
// new stream as ingest would: AVCC, parameter sets in Config.
func publish(t *testing.T, path string, s Settings) []Event {
	t.Helper()
	return publishLate(t, path, s, 0)
}

// publishLate is publish with the detector started only after lateFrames
// pictures were written (a decoder slow to open), reading through a reader
// subscribed before the first one (StartFrom); 0 starts it first (Start).
func publishLate(t *testing.T, path string, s Settings, lateFrames int) []Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// mediacommon's AnnexB.Unmarshal caps one unit at 50 NALUs: split here.
	var nalus [][]byte
	for _, n := range bytes.Split(b, []byte{0, 0, 1}) {
		if n = bytes.TrimRight(n, "\x00"); len(n) > 0 {
			nalus = append(nalus, n)
		}
	}
	src := media.NewStream("m", []*media.Track{{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: 90000}}, nil)
	var mu sync.Mutex
	var events []Event
	s.OnEvent = func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
	var d *Detector
	var rd *media.Reader
	startNow := func() {
		var err error
		if rd != nil {
			d, err = StartFrom(rd, s)
		} else {
			d, err = Start(src, s)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if lateFrames > 0 {
		rd = src.SubscribeSkipping("motion", media.DefaultQueueLen)
	} else {
		startNow()
	}
	var sps, pps []byte
	var cfg *media.Config
	var cur [][]byte
	n := 0
	for _, nal := range nalus {
		switch typ := h264.NALUType(nal[0] & 0x1f); typ {
		case h264.NALUTypeSPS:
			sps = nal
		case h264.NALUTypePPS:
			pps = nal
		case h264.NALUTypeIDR, h264.NALUTypeNonIDR:
			if cfg == nil {
				cfg = &media.Config{SPS: sps, PPS: pps, Width: 320, Height: 240}
			}
			data, _ := h264.AVCC(append(cur, nal)).Marshal()
			cur = nil
			ts := int64(n) * 3000
			n++
			if n == lateFrames {
				startNow()
			}
			src.Write(&media.Frame{Track: src.Tracks[0], DTS: ts, PTS: ts, Keyframe: typ == h264.NALUTypeIDR, Config: cfg, Data: data})
			if n%100 == 0 {
				time.Sleep(20 * time.Millisecond) // stay within the reader's queue
			}
		default:
			cur = append(cur, nal)
		}
	}
	src.Close()
	select {
	case <-d.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("detector did not stop")
	}
	d.Close()
	mu.Lock()
	defer mu.Unlock()
	return events
}

func TestStillPictureNoEvent(t *testing.T) {
	if ev := publish(t, "../../testdata/still.h264", Settings{}); len(ev) != 0 {
		t.Fatalf("events on a still picture (10 s): %+v", ev)
	}
}

func TestMovingPattern(t *testing.T) {
	// moving.h264: still 0–2 s, testsrc2 moving 2–4 s, still 4–7 s.
	ev := publish(t, "../../testdata/moving.h264", Settings{})
	if len(ev) != 2 || !ev[0].Start || ev[1].Start {
		t.Fatalf("events %+v, want start then stop", ev)
	}
	start, stop := float64(ev[0].PTS)/90000, float64(ev[1].PTS)/90000
	t.Logf("start at %.2f s (score %.3f), stop at %.2f s (score %.3f)", start, ev[0].Score, stop, ev[1].Score)
	if start < 2 || start > 3 {
		t.Errorf("start at %.2f s, want within 1 s of 2 s", start)
	}
	if stop < 4 || stop > 6.5 {
		t.Errorf("stop at %.2f s, want after the motion ends at 4 s (StopAfter 2 s)", stop)
	}
	if ev[0].Score <= (Settings{}).Threshold() {
		t.Errorf("start score %.4f not above the threshold", ev[0].Score)
	}
}

// TestStartFromLate: a detector whose start comes 3 s into the stream
// (past the motion at 2 s) but reads through a reader subscribed before the
// first frame, as a registry consumer's is, sees the stream from its start:
// the same events as one started first.
func TestStartFromLate(t *testing.T) {
	ev := publishLate(t, "../../testdata/moving.h264", Settings{}, 90)
	if len(ev) != 2 || !ev[0].Start || ev[1].Start {
		t.Fatalf("events %+v, want start then stop", ev)
	}
	if start := float64(ev[0].PTS) / 90000; start < 2 || start > 3 {
		t.Errorf("start at %.2f s, want within 1 s of 2 s", start)
	}
}

func TestRegion(t *testing.T) {
	// A region outside testsrc2's moving parts would need a fixture of its
	// own; here: a zero-size region after clamping gives no events.
	if ev := publish(t, "../../testdata/moving.h264", Settings{Region: Region{X: 1, Y: 1, Width: 0.5, Height: 0.5}}); len(ev) != 0 {
		t.Fatalf("events from an empty region: %+v", ev)
	}
}
