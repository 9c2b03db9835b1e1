package composite

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/rooms"
	"github.com/whipcast/whipcast/stages"
	"github.com/whipcast/whipcast/stages/codec"
)

// Name is the participant slot a composite publishes in: {room}/composite.
// Rooms reserve it, so it never counts as a participant.
const Name = rooms.Composite

// Settings shape one composite. Zero values mean the defaults.
type Settings struct {
	// Layout is Grid (default) or Speaker.
	Layout string `json:"layout"`
	// Width and Height of the output picture. Default 1280x720.
	Width  int `json:"width"`
	Height int `json:"height"`
	// FPS is the output frame rate. Default 30.
	FPS int `json:"fps"`
	// VideoBitrate of the H.264 encoder in bits per second. Default 2500000.
	VideoBitrate int `json:"video_bitrate"`
	// AudioBitrate of the Opus encoder in bits per second. Default 96000.
	AudioBitrate int `json:"audio_bitrate"`
	// KeyframeInterval is the longest gap between IDRs. Default 2s.
	KeyframeInterval time.Duration `json:"-"`
	// Delay is how far behind capture time the output runs, so pictures and
	// sound that arrive with network jitter are still in time. Default 200ms.
	Delay time.Duration `json:"-"`
}

// Defaults of Settings.
const (
	DefaultWidth        = 1280
	DefaultHeight       = 720
	DefaultFPS          = 30
	DefaultVideoBitrate = 2500000
	DefaultAudioBitrate = 96000
	DefaultDelay        = 200 * time.Millisecond
)

// Over returns s with the fields o sets replacing s's: a request's settings
// over the configured defaults (rooms.composite). Width and height go
// together: o sets the size when it sets either. KeyframeInterval and Delay
// are not the API's to set and stay s's.
func (s Settings) Over(o Settings) Settings {
	if o.Layout != "" {
		s.Layout = o.Layout
	}
	if o.Width != 0 || o.Height != 0 {
		s.Width, s.Height = o.Width, o.Height
	}
	if o.FPS != 0 {
		s.FPS = o.FPS
	}
	if o.VideoBitrate != 0 {
		s.VideoBitrate = o.VideoBitrate
	}
	if o.AudioBitrate != 0 {
		s.AudioBitrate = o.AudioBitrate
	}
	return s
}

// Normalize fills the zero fields with the defaults and checks the ranges.
func (s *Settings) Normalize() error {
	if s.Layout == "" {
		s.Layout = Grid
	}
	if s.Width == 0 && s.Height == 0 {
		s.Width, s.Height = DefaultWidth, DefaultHeight
	}
	if s.FPS == 0 {
		s.FPS = DefaultFPS
	}
	if s.VideoBitrate == 0 {
		s.VideoBitrate = DefaultVideoBitrate
	}
	if s.AudioBitrate == 0 {
		s.AudioBitrate = DefaultAudioBitrate
	}
	if s.KeyframeInterval == 0 {
		s.KeyframeInterval = 2 * time.Second
	}
	if s.Delay == 0 {
		s.Delay = DefaultDelay
	}
	switch {
	case s.Layout != Grid && s.Layout != Speaker:
		return fmt.Errorf("%w: layout %q is not %q or %q", ErrBadSettings, s.Layout, Grid, Speaker)
	case s.Width < 64 || s.Height < 64 || s.Width > 3840 || s.Height > 2160 || s.Width%2+s.Height%2 != 0:
		return fmt.Errorf("%w: size %dx%d: width and height must be even, 64x64-3840x2160", ErrBadSettings, s.Width, s.Height)
	case s.FPS < 1 || s.FPS > 60:
		return fmt.Errorf("%w: fps %d is out of range 1-60", ErrBadSettings, s.FPS)
	case s.VideoBitrate < 100000 || s.VideoBitrate > 50000000:
		return fmt.Errorf("%w: video_bitrate %d is out of range 100k-50M", ErrBadSettings, s.VideoBitrate)
	case s.AudioBitrate < 16000 || s.AudioBitrate > 512000:
		return fmt.Errorf("%w: audio_bitrate %d is out of range 16k-512k", ErrBadSettings, s.AudioBitrate)
	case s.Delay < 20*time.Millisecond || s.Delay > 5*time.Second:
		return fmt.Errorf("%w: delay %s is out of range 20ms-5s", ErrBadSettings, s.Delay)
	}
	return nil
}

// Publisher is the part of media.Registry a composite needs.
type Publisher interface {
	Publish(name string, tracks []*media.Track, onKeyframeRequest func()) (*media.Stream, error)
	Unpublish(s *media.Stream)
}

// Info is a running composite as the API shows it.
type Info struct {
	Room   string `json:"room"`
	Stream string `json:"stream"`
	Settings
	// Participants are the participants mixed, in layout order (for the
	// speaker layout the speaker first).
	Participants []string  `json:"participants"`
	Started      time.Time `json:"started"`
}

// Manager runs the composites of a gateway, at most Max at once.
type Manager struct {
	reg Publisher
	max int
	log *slog.Logger

	onStop func(Info)

	mu      sync.Mutex
	running map[string]*Composite // by room; nil while its codecs open
	closed  bool
	wg      sync.WaitGroup
}

// get returns room's running composite, or nil.
func (m *Manager) get(room string) *Composite {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running[room]
}

// OnStop sets a function called, on the composite's goroutine, after a
// composite has stopped and unpublished its stream. Set it before Start.
func (m *Manager) OnStop(fn func(Info)) { m.onStop = fn }

// NewManager makes a Manager that publishes composites in reg; max bounds how
// many run at once (each decodes every participant and encodes one picture
// stream: see docs/BENCHMARKS.md for the cost).
func NewManager(reg Publisher, max int, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{reg: reg, max: max, log: log, running: map[string]*Composite{}}
}

// Start runs a composite for room with the participants already publishing;
// later ones come through Join.
func (m *Manager) Start(room string, s Settings, participants []*media.Stream) (Info, error) {
	if err := s.Normalize(); err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Info{}, ErrClosed
	}
	if _, ok := m.running[room]; ok {
		m.mu.Unlock()
		return Info{}, ErrExists
	}
	if len(m.running) >= m.max {
		m.mu.Unlock()
		return Info{}, fmt.Errorf("%w: rooms.max_composites is %d", ErrTooMany, m.max)
	}
	m.running[room] = nil // reserve the slot while the codecs open
	m.mu.Unlock()
	c := &Composite{room: room, s: s, log: m.log.With("stream", room+"/"+Name)}
	err := c.open(m.reg)
	m.mu.Lock()
	if err == nil && m.closed {
		err = ErrClosed
		c.close(m.reg)
	}
	if err != nil {
		delete(m.running, room)
		m.mu.Unlock()
		return Info{}, err
	}
	m.running[room] = c
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		c.run(participants)
		m.reg.Unpublish(c.out)
		m.mu.Lock()
		if m.running[room] == c {
			delete(m.running, room)
		}
		m.mu.Unlock()
		// Only now: a Stop that returned means unpublished and gone, so
		// a second Stop or a Start for the room right after sees no
		// composite (closed at the end of run, a second Stop raced the
		// delete and found the stopped one still listed).
		close(c.done)
		if m.onStop != nil {
			m.onStop(c.info())
		}
	}()
	return c.info(), nil
}

// Join adds a participant's stream to its room's composite, if the room has
// one. The composite's own stream is never added.
func (m *Manager) Join(room string, s *media.Stream) {
	if c := m.get(room); c != nil && s != c.out {
		c.join(s)
	}
}

// Stop ends room's composite and waits for it.
func (m *Manager) Stop(room string) error {
	c := m.get(room)
	if c == nil {
		return ErrNotFound
	}
	c.stop()
	return nil
}

// End makes room's composite stop, without waiting (for callers that must
// not block, such as the rooms' event handler).
func (m *Manager) End(room string) {
	if c := m.get(room); c != nil {
		c.cancel()
	}
}

// Mute tells room's composite that participant muted (or unmuted) its
// audio or video (kind "audio" or "video"): muted audio is left out of the
// mix, muted video leaves a black tile. It does not block; it applies to the
// participant's later publishes too, until unmuted.
func (m *Manager) Mute(room, participant, kind string, muted bool) {
	if c := m.get(room); c != nil {
		select {
		case c.mutes <- mute{participant, kind, muted}:
		default:
			c.log.Warn("composite: mute dropped, the composite is not keeping up", "participant", participant)
		}
	}
}

// Get describes room's composite.
func (m *Manager) Get(room string) (Info, error) {
	c := m.get(room)
	if c == nil {
		return Info{}, ErrNotFound
	}
	return c.info(), nil
}

// Running is how many composites run.
func (m *Manager) Running() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.running)
}

// Close stops every composite and waits. Safe to call more than once.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, c := range m.running {
		if c != nil {
			c.cancel()
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
}

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
