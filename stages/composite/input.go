package composite

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages"
	"github.com/whipcast/whipcast/stages/codec"
)

// input is one participant of a composite. Its goroutine (run) reads the
// participant's stream, decodes pictures at the size of its tile and audio
// to PCM, and sends both to the mixer stamped with their capture time on the
// gateway's clock.
type input struct {
	c    *Composite
	src  *media.Stream
	name string
	// box is the tile size to decode to, width<<32 | height, set by the
	// mixer; 0 means not shown, so not decoded.
	box atomic.Int64

	// Owned by the mixer goroutine.
	queue     []picture
	current   *codec.Picture
	currentAt time.Time
	pcm       *pcmBuffer
	gone      bool
}

// clock maps a sender's capture times to the gateway's clock. The offset is
// the smallest (arrival − capture) seen in the last two windows of 10 s: the
// fastest path through the network, so mapped times are never in the future,
// and it follows a sender clock that drifts. Audio and video share it, so a
// participant keeps its lip sync.
type clock struct {
	cur, prev time.Duration
	since     time.Time
	set       bool
}

const clockWindow = 10 * time.Second

func (k *clock) local(capture, now time.Time) time.Time {
	d := now.Sub(capture)
	switch {
	case !k.set:
		k.cur, k.prev, k.since, k.set = d, d, now, true
	case now.Sub(k.since) > clockWindow:
		k.prev, k.cur, k.since = k.cur, d, now
	case d < k.cur:
		k.cur = d
	}
	return capture.Add(min(k.cur, k.prev))
}

func (in *input) run() {
	c := in.c
	defer func() {
		select {
		case c.leaves <- in:
		case <-c.ctx.Done():
		}
	}()
	vdec, err := codec.NewFitDecoder()
	if err != nil {
		c.log.Warn("participant not composited", "participant", in.name, "err", err)
		return
	}
	defer vdec.Close()
	adec, err := codec.NewOpusDecoder()
	if err != nil {
		c.log.Warn("participant not composited", "participant", in.name, "err", err)
		return
	}
	defer adec.Close()
	r := in.src.SubscribeSkipping("composite", 0)
	defer func() { r.Close() }()
	var (
		k       clock
		started bool // a keyframe went into the decoder
		hidden  bool
		au      []byte
	)
	for {
		f, err := r.Read(c.ctx)
		switch {
		case err == nil:
		case errors.Is(err, media.ErrReaderSkipped):
			c.log.Warn("composite input fell behind; skipped to the next keyframe", "participant", in.name)
			started = false
			continue
		default: // the participant left, or the composite stops
			return
		}
		switch {
		case f.Track.Kind == media.KindAudio && f.Track.Codec == media.CodecOpus:
			pcm, _ := adec.Decode(nil, f.Data)
			if len(pcm) == 0 {
				continue
			}
			s := samples{in: in, pcm: pcm, at: k.local(f.Time, time.Now())}
			select {
			case c.pcm <- s:
			case <-c.ctx.Done():
				return
			}
		case f.Track.Kind == media.KindVideo && f.Track.Codec == media.CodecH264:
			box := in.box.Load()
			if box == 0 {
				hidden, started = true, false
				continue
			}
			if hidden {
				// Shown again: decoding starts at the next keyframe.
				hidden = false
				in.src.RequestKeyframe()
			}
			if !started {
				if !f.Keyframe || f.Config == nil {
					continue
				}
				started = true
			}
			if au, err = stages.AnnexB(au, f); err != nil {
				continue
			}
			at := k.local(f.Time, time.Now())
			pics, err := vdec.Decode(au, f.PTS, int(box>>32), int(box&0xffffffff))
			if err != nil {
				c.log.Debug("composite decode", "participant", in.name, "err", err)
				continue
			}
			for _, p := range pics {
				// A picture is the frame just sent unless the decoder
				// reorders; its own PTS says how far from f it is.
				pt := at.Add(time.Duration(p.PTS-f.PTS) * time.Second / codec.VideoClockRate)
				select {
				case c.pics <- picture{in: in, pic: p, at: pt}:
				case <-c.ctx.Done():
					return
				}
			}
		}
	}
}
