package composite

import (
	"slices"
	"sync"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/stages"
	"github.com/whipcast/whipcast/stages/codec"
)

type mixer struct {
	*Composite
	inputs  []*input      // join order
	muted   map[mute]bool // {participant, kind} muted
	speaker *input
	since   time.Time // when the speaker last changed
	tiles   []Rect
	shown   []*input // the input of each tile
	canvas  *codec.Picture
	frame   int64 // index of the last picture encoded
	block   int64 // index of the next audio block to mix
	aPTS    int64 // output samples encoded
	mix     []float32
	lim     *limiter
	vout    *stages.H264Out
	wg      sync.WaitGroup
}

func (m *mixer) position(t time.Time) int64 {
	return int64(t.Add(m.s.Delay).Sub(m.started).Seconds()*codec.AACSampleRate + 0.5)
}

func (m *mixer) add(s *media.Stream) bool {
	for _, in := range m.inputs {
		if in.src == s {
			return false
		}
	}
	if s.Track(media.KindVideo) == nil && s.Track(media.KindAudio) == nil {
		return false
	}
	name := s.Name
	if i := len(m.room) + 1; len(name) > i {
		name = name[i:]
	}
	in := &input{c: m.Composite, src: s, name: name, pcm: newPCMBuffer()}
	m.inputs = append(m.inputs, in)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		in.run()
	}()
	m.log.Info("participant joined the composite", "participant", name)
	return true
}

func (m *mixer) remove(in *input) {
	i := slices.Index(m.inputs, in)
	if i < 0 {
		return
	}
	in.gone = true
	m.inputs = slices.Delete(m.inputs, i, i+1)
	if m.speaker == in {
		m.speaker = nil
	}
	m.log.Info("participant left the composite", "participant", in.name)
	m.relayout()
}

// relayout recomputes the tiles for the current participants and tells
// each input the size to decode to (0×0: not shown, not decoded).
func (m *mixer) relayout() {
	order := slices.Clone(m.inputs)
	if m.s.Layout == Speaker && m.speaker != nil {
		i := slices.Index(order, m.speaker)
		order = slices.Insert(slices.Delete(order, i, i+1), 0, m.speaker)
	}
	m.tiles = Tiles(m.s.Layout, len(order), m.s.Width, m.s.Height)
	m.shown = order[:len(m.tiles)]
	for _, in := range order {
		in.box.Store(0)
	}
	for i, in := range m.shown {
		in.box.Store(int64(m.tiles[i].W)<<32 | int64(m.tiles[i].H))
	}
	names := make([]string, len(order))
	for i, in := range order {
		names[i] = in.name
	}
	m.infoMu.Lock()
	m.names = names
	m.infoMu.Unlock()
}

// video composes and encodes the picture due at now, if one is due.
func (m *mixer) video(now time.Time) {
	k := int64(now.Sub(m.started) * time.Duration(m.s.FPS) / time.Second)
	if k <= m.frame {
		return
	}
	m.frame = k
	show := now.Add(-m.s.Delay)
	m.canvas.Fill(16, 128, 128)
	for i, in := range m.shown {
		// The newest picture captured by show; older ones are done with.
		j := -1
		for n, p := range in.queue {
			if !p.at.After(show) {
				j = n
			}
		}
		if j >= 0 {
			in.current, in.currentAt = in.queue[j].pic, in.queue[j].at
			in.queue = slices.Delete(in.queue, 0, j+1)
		}
		// A camera turned off (a muted track sends nothing) leaves the
		// tile black rather than frozen on its last picture.
		if in.current != nil && show.Sub(in.currentAt) < staleAfter && !m.muted[mute{participant: in.name, kind: "video"}] {
			blit(m.canvas, in.current, m.tiles[i])
		}
	}
	m.canvas.PTS = k * codec.VideoClockRate / int64(m.s.FPS)
	pkts, err := m.venc.Encode(m.canvas)
	if err != nil {
		m.log.Warn("composite encode", "err", err)
		return
	}
	m.writeVideo(pkts)
}

func (m *mixer) writeVideo(pkts []codec.VideoPacket) {
	for _, p := range pkts {
		t := m.started.Add(time.Duration(p.PTS) * time.Second / codec.VideoClockRate)
		if err := m.vout.Write(p, t); err != nil {
			m.log.Debug("composite access unit skipped", "err", err)
		}
	}
}

// audio mixes and encodes every 20 ms block that is due at now.
func (m *mixer) audio(now time.Time) {
	due := int64(now.Sub(m.started).Seconds() * codec.AACSampleRate / audioBlock)
	if due-m.block > 50 { // a second behind (the machine stalled): skip ahead
		m.block = due - 1
	}
	for ; m.block < due; m.block++ {
		clear(m.mix)
		for _, in := range m.inputs {
			if m.muted[mute{participant: in.name, kind: "audio"}] {
				in.pcm.skip(m.block*audioBlock + audioBlock)
				continue
			}
			in.pcm.mixInto(m.mix, m.block*audioBlock)
		}
		out := m.lim.process(m.mix)
		if out == nil {
			continue
		}
		pkts, err := m.aenc.Encode(out, m.aPTS)
		if err != nil {
			m.log.Warn("composite audio encode", "err", err)
			continue
		}
		for _, p := range pkts {
			// Our own count, not the encoder's pts (which starts at minus
			// its pre-skip): the stream's audio starts at 0 like its video.
			ts := m.aPTS
			m.aPTS += audioBlock
			t := m.started.Add(time.Duration(ts) * time.Second / codec.AACSampleRate)
			m.out.Write(&media.Frame{Track: m.out.Tracks[1], DTS: ts, PTS: ts, Keyframe: true, Data: p.Data, Time: t})
		}
	}
	m.pickSpeaker(now)
}

// pickSpeaker makes the loudest participant the speaker when it has been
// clearly louder (6 dB) than the current one, at most once a second.
func (m *mixer) pickSpeaker(now time.Time) {
	if m.s.Layout != Speaker || len(m.inputs) < 2 || now.Sub(m.since) < time.Second {
		return
	}
	var loudest *input
	for _, in := range m.inputs {
		if loudest == nil || in.pcm.level > loudest.pcm.level {
			loudest = in
		}
	}
	if loudest == m.speaker || loudest.pcm.level < 0.003 { // about -50 dBFS
		return
	}
	if m.speaker != nil && loudest.pcm.level < 2*m.speaker.pcm.level {
		return
	}
	m.speaker, m.since = loudest, now
	m.relayout()
}

// blit copies p centred into r of canvas, cropping what does not fit.
func blit(canvas, p *codec.Picture, r Rect) {
	x0 := r.X + ((r.W-p.Width)/2)&^1
	y0 := r.Y + ((r.H-p.Height)/2)&^1
	// The visible part of p: clip to r.
	sx, sy := max(0, r.X-x0), max(0, r.Y-y0)
	w := min(p.Width-sx, r.X+r.W-max(x0, r.X))
	h := min(p.Height-sy, r.Y+r.H-max(y0, r.Y))
	dx, dy := max(x0, r.X), max(y0, r.Y)
	if w <= 0 || h <= 0 {
		return
	}
	for y := 0; y < h; y++ {
		copy(canvas.Y[(dy+y)*canvas.Width+dx:][:w], p.Y[(sy+y)*p.Width+sx:][:w])
	}
	cw, pcw := (canvas.Width+1)/2, (p.Width+1)/2
	for y := 0; y < (h+1)/2; y++ {
		copy(canvas.Cb[(dy/2+y)*cw+dx/2:][:(w+1)/2], p.Cb[(sy/2+y)*pcw+sx/2:][:(w+1)/2])
		copy(canvas.Cr[(dy/2+y)*cw+dx/2:][:(w+1)/2], p.Cr[(sy/2+y)*pcw+sx/2:][:(w+1)/2])
	}
}
