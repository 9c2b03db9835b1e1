package rtmp

import (
	"context"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/ingest"
	"github.com/whipcast/whipcast/internal/rtpsim"
	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/packager"
	"github.com/whipcast/whipcast/transmux"
	"github.com/whipcast/whipcast/transmux/transmuxtest"
)

// The long-run simulation lives here because the RTMP muxer is this
// package's; it drives the real ingest Timeline, media.Stream, transmuxer,
// HLS and DASH packagers in-process on a fake clock.

const maxAV = 40 * time.Millisecond

// capRing remembers the capture time of a track's recent frames by DTS, so
// that an output timestamp can be compared with when its frame was
// captured. Bounded: the simulation's memory must stay flat.
type capRing struct {
	dts []int64
	cap []time.Duration
	n   int
}

func newCapRing(size int) *capRing {
	return &capRing{dts: make([]int64, size), cap: make([]time.Duration, size)}
}

func (r *capRing) add(dts int64, c time.Duration) {
	i := r.n % len(r.dts)
	r.dts[i], r.cap[i] = dts, c
	r.n++
}

func (r *capRing) find(dts int64) (time.Duration, bool) {
	for k := 1; k <= min(r.n, len(r.dts)); k++ {
		i := (r.n - k) % len(r.dts)
		if r.dts[i] == dts {
			return r.cap[i], true
		}
	}
	return 0, false
}

// segChecker is a transmux.Sink that checks what the packagers get:
// segments contiguous and increasing per track, and the A/V offset of each
// segment's first sample. It keeps the capture time of the recent segments'
// first samples, by track and decode time, for the playlist checks.
type segChecker struct {
	t       *testing.T
	rings   map[*media.Track]*capRing
	inits   map[media.Kind]*transmux.Init
	next    map[*media.Track]uint64
	first   map[media.Kind]map[uint64]time.Duration // BMDT → capture
	order   map[media.Kind][]uint64
	msnOff  map[uint64]*[2]time.Duration
	settle  time.Duration
	worstAV time.Duration
	segs    int
}

func (c *segChecker) OnInit(in *transmux.Init) { c.inits[in.Track.Kind] = in }
func (c *segChecker) OnPart(*transmux.Part)    {}
func (c *segChecker) OnEnd(error)              {}

func (c *segChecker) OnSegment(s *transmux.Segment) {
	tr := s.Init.Track
	if s.Gap() {
		c.t.Errorf("%v: gap segment %d", tr.Kind, s.MSN)
	}
	if want, ok := c.next[tr]; ok && s.BaseMediaDecodeTime != want {
		c.t.Fatalf("%v segment %d starts at %d, the one before ended at %d", tr.Kind, s.MSN, s.BaseMediaDecodeTime, want)
	}
	if s.Duration == 0 {
		c.t.Fatalf("%v segment %d is empty", tr.Kind, s.MSN)
	}
	c.next[tr] = s.BaseMediaDecodeTime + s.Duration
	capt, ok := c.rings[tr].find(int64(s.BaseMediaDecodeTime))
	if !ok {
		c.t.Fatalf("%v segment %d: no frame at DTS %d", tr.Kind, s.MSN, s.BaseMediaDecodeTime)
	}
	k := tr.Kind
	c.first[k][s.BaseMediaDecodeTime] = capt
	c.order[k] = append(c.order[k], s.BaseMediaDecodeTime)
	if len(c.order[k]) > 64 {
		delete(c.first[k], c.order[k][0])
		c.order[k] = append(c.order[k][:0], c.order[k][1:]...)
	}
	off := ticks(int64(s.BaseMediaDecodeTime), tr.ClockRate) - capt
	o := c.msnOff[s.MSN]
	if o == nil {
		o = &[2]time.Duration{math.MaxInt64, math.MaxInt64}
		c.msnOff[s.MSN] = o
	}
	o[kindIdx(k)] = off
	if o[0] != math.MaxInt64 && o[1] != math.MaxInt64 {
		delete(c.msnOff, s.MSN)
		if capt >= c.settle {
			c.worstAV = max(c.worstAV, absDur(o[0]-o[1]))
		}
	}
	c.segs++
}

func kindIdx(k media.Kind) int {
	if k == media.KindVideo {
		return 0
	}
	return 1
}

func ticks(n int64, rate uint32) time.Duration {
	return time.Duration(n/int64(rate))*time.Second + time.Duration(n%int64(rate)*int64(time.Second)/int64(rate))
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

type sinks []transmux.Sink

func (m sinks) OnInit(in *transmux.Init) {
	for _, s := range m {
		s.OnInit(in)
	}
}
func (m sinks) OnPart(p *transmux.Part) {
	for _, s := range m {
		s.OnPart(p)
	}
}
func (m sinks) OnSegment(g *transmux.Segment) {
	for _, s := range m {
		s.OnSegment(g)
	}
}
func (m sinks) OnEnd(err error) {
	for _, s := range m {
		s.OnEnd(err)
	}
}

var (
	reSegT = regexp.MustCompile(`_t(\d+)\.m4s$`)
	reS    = regexp.MustCompile(`<S (?:t="(\d+)" )?d="(\d+)"(?: r="(\d+)")?`)
)

// checkHLS reads the media playlists the HLS packager renders: program date
// times increasing and equal to the origin plus the segment's decode time,
// and the A/V offset of segments at the same position within maxAV.
func checkHLS(t *testing.T, hls *packager.HLSWindow, c *segChecker, origin time.Time) (av time.Duration, n int) {
	t.Helper()
	var offs [2][]time.Duration
	for _, k := range []media.Kind{media.KindVideo, media.KindAudio} {
		in := c.inits[k]
		pl := string(hls.Media(in))
		var pdt, last time.Time
		for _, line := range strings.Split(pl, "\n") {
			if v, ok := strings.CutPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"); ok {
				var err error
				if pdt, err = time.Parse(time.RFC3339Nano, v); err != nil {
					t.Fatal(err)
				}
				if !pdt.After(last) {
					t.Fatalf("%v playlist: PROGRAM-DATE-TIME %v after %v", k, pdt, last)
				}
				last = pdt
				continue
			}
			m := reSegT.FindStringSubmatch(line)
			if m == nil || strings.HasPrefix(line, "#") {
				continue
			}
			bmdt, _ := strconv.ParseUint(m[1], 10, 64)
			media := ticks(int64(bmdt), in.Track.ClockRate)
			if d := pdt.Sub(origin) - media; absDur(d) > 2*time.Millisecond {
				t.Fatalf("%v %s: PROGRAM-DATE-TIME %v is %v off its decode time", k, line, pdt, d)
			}
			if capt, ok := c.first[k][bmdt]; ok {
				offs[kindIdx(k)] = append(offs[kindIdx(k)], media-capt)
			}
		}
	}
	for i := 1; i <= min(len(offs[0]), len(offs[1])); i++ {
		av = max(av, absDur(offs[0][len(offs[0])-i]-offs[1][len(offs[1])-i]))
		n++
	}
	return av, n
}

// checkDASH reads the MPD's SegmentTimelines: contiguous, increasing, and
// the A/V offset of segments at the same position within maxAV.
func checkDASH(t *testing.T, dash *packager.DASHWindow, c *segChecker) (av time.Duration, n int) {
	t.Helper()
	mpd := string(dash.MPD())
	var offs [2][]time.Duration
	for _, k := range []media.Kind{media.KindVideo, media.KindAudio} {
		i := strings.Index(mpd, `contentType="`+k.String()+`"`)
		if i < 0 {
			t.Fatalf("MPD has no %v AdaptationSet:\n%s", k, mpd)
		}
		set := mpd[i:]
		set = set[:strings.Index(set, "</AdaptationSet>")]
		var next uint64
		for j, s := range reS.FindAllStringSubmatch(set, -1) {
			d, _ := strconv.ParseUint(s[2], 10, 64)
			r, _ := strconv.ParseUint(s[3], 10, 64)
			if s[1] != "" {
				tt, _ := strconv.ParseUint(s[1], 10, 64)
				if j > 0 && tt != next {
					t.Fatalf("%v: S@t %d after a segment ending at %d", k, tt, next)
				}
				next = tt
			}
			for range r + 1 {
				if capt, ok := c.first[k][next]; ok {
					offs[kindIdx(k)] = append(offs[kindIdx(k)], ticks(int64(next), c.inits[k].Track.ClockRate)-capt)
				}
				next += d
			}
		}
	}
	for i := 1; i <= min(len(offs[0]), len(offs[1])); i++ {
		av = max(av, absDur(offs[0][len(offs[0])-i]-offs[1][len(offs[1])-i]))
		n++
	}
	return av, n
}

// rtmpChecker follows the muxer's messages back to the frames they carry.
type rtmpChecker struct {
	t       *testing.T
	pending [3][]time.Duration // capture times of frames queued in the muxer
	last    [3]int64
	off     [3]time.Duration
	have    [3]bool
	settle  time.Duration
	worstAV time.Duration
	msgs    int
}

func frameMessages(m *muxer, k msgKind) int {
	n := 0
	for _, msg := range m.pending {
		if msg.kind == k && !msg.header {
			n++
		}
	}
	return n
}

func (r *rtmpChecker) push(m *muxer, f *media.Frame, capt time.Duration) {
	k := msgVideo
	if f.Track.Kind == media.KindAudio {
		k = msgAudio
	}
	before := frameMessages(m, k)
	out, err := m.push(f)
	if err != nil {
		r.t.Fatal(err)
	}
	sent := 0
	for _, msg := range out {
		if msg.kind == k && !msg.header {
			sent++
		}
	}
	if frameMessages(m, k)+sent > before {
		r.pending[k] = append(r.pending[k], capt)
	}
	for _, msg := range out {
		if msg.header {
			continue
		}
		if int64(msg.ts) <= r.last[msg.kind] && r.msgs > 0 {
			r.t.Fatalf("RTMP kind %d: %d ms after %d ms", msg.kind, msg.ts, r.last[msg.kind])
		}
		r.last[msg.kind] = int64(msg.ts)
		c := r.pending[msg.kind][0]
		r.pending[msg.kind] = append(r.pending[msg.kind][:0], r.pending[msg.kind][1:]...)
		r.off[msg.kind] = time.Duration(msg.ts)*time.Millisecond - c
		r.have[msg.kind] = true
		if c >= r.settle && r.have[msgVideo] && r.have[msgAudio] {
			r.worstAV = max(r.worstAV, absDur(r.off[msgVideo]-r.off[msgAudio]))
		}
		r.msgs++
	}
}

// TestLongRunTwoHours is issue 11's "hours": a simulated two-hour publish
// with RTP clocks skewed ±100 ppm, Sender Reports every 5 s, jitter, audio
// arriving 60 ms behind video, and both RTP timestamps wrapping in the
// middle, through ingest's Timeline, a media.Stream, the transmuxer, the
// HLS and DASH packagers and the RTMP muxer. Every output keeps A/V within
// 40 ms and strictly increasing timestamps; heap and goroutines are flat
// between 30 minutes and 2 hours.
func TestLongRunTwoHours(t *testing.T) {
	dur := 2 * time.Hour
	if testing.Short() {
		dur = 40 * time.Minute
	}
	const settle = 15 * time.Second
	fx, err := transmuxtest.Load("../../testdata/av.h264", "../../testdata/av.ogg", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	video, audio := fx.Video, fx.Audio
	local := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	snd := &rtpsim.Sender{
		Tracks: []rtpsim.Track{
			{ClockRate: 90000, Interval: time.Second / 30, Skew: 100e-6,
				Origin: uint32(math.MaxUint32 - int64(dur/2/time.Second)*90000)},
			{ClockRate: 48000, Interval: 20 * time.Millisecond, Skew: -100e-6, Delay: 60 * time.Millisecond,
				Origin: uint32(math.MaxUint32 - int64(dur/2/time.Second)*48000 + 12345)},
		},
		SRInterval: 5 * time.Second,
		NTPBase:    local.Add(-37 * time.Minute),
		LocalBase:  local,
		LocalSkew:  50e-6,
		Transit:    25 * time.Millisecond,
		Jitter:     30 * time.Millisecond,
		Seed:       2,
	}
	tl := ingest.NewTimeline(90000, 48000)
	tracks := []*media.Track{video, audio}
	stream := media.NewStream("live/longrun", tracks, nil)
	defer stream.Close()
	reader := stream.Subscribe("longrun", 16)
	defer reader.Close()
	tm := transmux.Settings{}.WithDefaults()
	dash := packager.NewDASHWindow(stream, "e1", 0, tm)
	hls := packager.NewHLSWindow(stream, 0, tm, dash)
	chk := &segChecker{t: t, settle: settle,
		rings:  map[*media.Track]*capRing{video: newCapRing(1024), audio: newCapRing(2048)},
		inits:  map[media.Kind]*transmux.Init{},
		next:   map[*media.Track]uint64{},
		first:  map[media.Kind]map[uint64]time.Duration{media.KindVideo: {}, media.KindAudio: {}},
		order:  map[media.Kind][]uint64{},
		msnOff: map[uint64]*[2]time.Duration{},
	}
	tmx, err := transmux.New(tm, tracks, sinks{dash, hls, chk})
	if err != nil {
		t.Fatal(err)
	}
	mux := newMuxer(video, audio)
	rc := &rtmpChecker{t: t, settle: settle}
	ctx := context.Background()

	var origin time.Time
	var heap30 uint64
	var gor30 int
	checkpoints := []time.Duration{time.Minute, 30 * time.Minute, dur / 2, dur/2 + time.Minute, dur - time.Minute}
	measure := func(at time.Duration) {
		av, n := checkHLS(t, hls, chk, origin)
		dv, dn := checkDASH(t, dash, chk)
		t.Logf("at %v: HLS A/V %v over %d segments, DASH A/V %v over %d, transmux worst %v, RTMP worst %v", at, av, n, dv, dn, chk.worstAV, rc.worstAV)
		if n == 0 || dn == 0 {
			t.Fatalf("at %v: nothing to compare (HLS %d, DASH %d)", at, n, dn)
		}
		if av > maxAV || dv > maxAV {
			t.Errorf("at %v: A/V HLS %v, DASH %v", at, av, dv)
		}
	}
	frames := 0
	for {
		ev := snd.Next()
		if ev.Capture > dur {
			break
		}
		if ev.SR {
			tl.SenderReport(ev.Track, ev.NTP, ev.TS, ev.Arrival)
			continue
		}
		for len(checkpoints) > 0 && ev.Capture >= checkpoints[0] {
			measure(checkpoints[0])
			if checkpoints[0] == 30*time.Minute {
				heap30, gor30 = heapNow(), runtime.NumGoroutine()
			}
			checkpoints = checkpoints[1:]
		}
		dts, wall := tl.Frame(ev.Track, ev.TS, ev.Arrival)
		if frames == 0 {
			origin = wall
		}
		var src *media.Frame
		tr := tracks[ev.Track]
		if ev.Track == 0 {
			src = fx.VideoFrames[ev.Index%len(fx.VideoFrames)]
		} else {
			src = fx.AudioFrames[ev.Index%len(fx.AudioFrames)]
		}
		chk.rings[tr].add(dts, ev.Capture)
		stream.Write(&media.Frame{Track: tr, DTS: dts, PTS: dts, Keyframe: src.Keyframe, Config: src.Config, Data: src.Data, Time: wall})
		f, err := reader.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tmx.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		rc.push(mux, f, ev.Capture)
		frames++
	}
	heap2h, gor2h := heapNow(), runtime.NumGoroutine()
	t.Logf("%d frames, %d segments, %d RTMP frames; heap %d KiB at 30 min, %d KiB at %v; goroutines %d, %d",
		frames, chk.segs, rc.msgs, heap30>>10, heap2h>>10, dur, gor30, gor2h)
	if chk.worstAV > maxAV {
		t.Errorf("segments: worst A/V %v", chk.worstAV)
	}
	if rc.worstAV > maxAV {
		t.Errorf("RTMP: worst A/V %v", rc.worstAV)
	}
	if dur == 2*time.Hour && chk.segs < 2*3500 {
		t.Errorf("%d segments for two hours", chk.segs)
	}
	// A leak of one small object per frame over the 1.5 h between the
	// samples (430 000 frames) is tens of MiB; the windows are constant.
	if heap2h > heap30+8<<20 {
		t.Errorf("heap grew from %d KiB to %d KiB", heap30>>10, heap2h>>10)
	}
	if gor2h > gor30 {
		t.Errorf("goroutines grew from %d to %d", gor30, gor2h)
	}
}

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
