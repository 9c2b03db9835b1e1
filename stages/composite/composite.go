package composite

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages"
	"github.com/whipcast/whipcast/stages/codec"
)

// Composite is one room's mix. Its goroutine (run) owns everything below
// the channels.
type Composite struct {
	room    string
	s       Settings
	log     *slog.Logger
	out     *media.Stream
	started time.Time

	venc codec.VideoEncoder
	aenc codec.PCMEncoder

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed once stopped, unpublished and out of the Manager
	joins  chan *media.Stream
	leaves chan *input
	pics   chan picture
	pcm    chan samples
	mutes  chan mute

	// infoMu guards the snapshot Get returns (written by run).
	infoMu sync.Mutex
	names  []string

	lastKeyReq atomic.Int64 // unix nanos of the last keyframe request honoured
}

// mute is a participant's mute signal (rooms.Manager.Mute).
type mute struct {
	participant, kind string
	muted             bool
}

// picture is a participant's decoded picture with its capture time on the
// gateway's clock.
type picture struct {
	in  *input
	pic *codec.Picture
	at  time.Time
}

// samples are a participant's decoded audio with its capture time.
type samples struct {
	in  *input
	pcm []float32
	at  time.Time
}

func (c *Composite) open(reg Publisher) error {
	var err error
	kf := int64(c.s.KeyframeInterval.Seconds() * codec.VideoClockRate)
	if c.venc, err = codec.NewVideoEncoder(codec.VideoSettings{Bitrate: c.s.VideoBitrate, KeyframeInterval: kf}, c.s.Width, c.s.Height, c.s.FPS); err != nil {
		return err
	}
	if c.aenc, err = codec.NewOpusEncoder(c.s.AudioBitrate); err != nil {
		c.venc.Close()
		return err
	}
	tracks := []*media.Track{
		{Kind: media.KindVideo, Codec: media.CodecH264, ClockRate: codec.VideoClockRate},
		{Kind: media.KindAudio, Codec: media.CodecOpus, ClockRate: codec.AACSampleRate, Channels: 2},
	}
	out, err := reg.Publish(c.room+"/"+Name, tracks, c.requestKeyframe)
	if err != nil {
		c.venc.Close()
		c.aenc.Close()
		return err
	}
	c.started = time.Now()
	out.Started = c.started
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.done = make(chan struct{})
	c.joins = make(chan *media.Stream, 16)
	c.leaves = make(chan *input, 16)
	c.pics = make(chan picture, 64)
	c.pcm = make(chan samples, 256)
	c.mutes = make(chan mute, 64)
	c.out = out
	return nil
}

// close undoes open for a composite that will not run.
func (c *Composite) close(reg Publisher) {
	reg.Unpublish(c.out)
	c.cancel()
	c.venc.Close()
	c.aenc.Close()
}

// requestKeyframe is the output stream's keyframe request: a new viewer or
// segmenter gets an IDR within a frame, but at most two a second.
func (c *Composite) requestKeyframe() {
	now := time.Now().UnixNano()
	last := c.lastKeyReq.Load()
	if now-last < int64(500*time.Millisecond) || !c.lastKeyReq.CompareAndSwap(last, now) {
		return
	}
	c.venc.RequestKeyframe()
}

func (c *Composite) join(s *media.Stream) {
	select {
	case c.joins <- s:
	case <-c.ctx.Done():
	}
}

func (c *Composite) stop() {
	c.cancel()
	<-c.done
}

func (c *Composite) info() Info {
	c.infoMu.Lock()
	defer c.infoMu.Unlock()
	return Info{Room: c.room, Stream: c.room + "/" + Name, Settings: c.s, Participants: slices.Clone(c.names), Started: c.started}
}

// mixer is run's state: owned by the composite's goroutine alone.
const audioBlock = 960 // 20 ms at 48 kHz, the Opus frame

// staleAfter is how long a participant's last picture stays on screen when
// no newer one comes.
const staleAfter = time.Second

func (c *Composite) run(participants []*media.Stream) {
	m := &mixer{Composite: c, muted: map[mute]bool{}, canvas: codec.NewPicture(c.s.Width, c.s.Height), frame: -1, lim: newLimiter(),
		mix: make([]float32, 2*audioBlock), vout: &stages.H264Out{Out: c.out, Track: c.out.Tracks[0]}}
	defer func() {
		c.cancel()
		// Inputs send with ctx, so they all return; their channels are
		// abandoned, not drained.
		m.wg.Wait()
		if pkts, err := c.venc.Flush(); err == nil {
			m.writeVideo(pkts)
		}
		c.venc.Close()
		c.aenc.Close()
	}()
	for _, s := range participants {
		m.add(s)
	}
	m.relayout()
	period := time.Second / time.Duration(c.s.FPS)
	vt := time.NewTicker(period)
	defer vt.Stop()
	at := time.NewTicker(20 * time.Millisecond)
	defer at.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case s := <-c.joins:
			if m.add(s) {
				m.relayout()
			}
		case in := <-c.leaves:
			m.remove(in)
		case u := <-c.mutes:
			key := mute{participant: u.participant, kind: u.kind}
			if u.muted {
				m.muted[key] = true
			} else {
				delete(m.muted, key)
			}
		case p := <-c.pics:
			if !p.in.gone {
				p.in.queue = append(p.in.queue, p)
				if len(p.in.queue) > 2*c.s.FPS { // a second and more behind: drop the oldest
					p.in.queue = slices.Delete(p.in.queue, 0, 1)
				}
			}
		case a := <-c.pcm:
			if !a.in.gone {
				a.in.pcm.put(m.position(a.at), a.pcm, m.block*audioBlock)
			}
		case now := <-vt.C:
			m.video(now)
		case now := <-at.C:
			m.audio(now)
		}
	}
}

// position is the output sample position at which audio captured at t plays.
