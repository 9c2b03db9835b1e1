package media

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueueLen is the reader queue length used when Subscribe is given 0:
// about 8 s of a 30 fps video track plus its 50 fps Opus audio.
const DefaultQueueLen = 640

// Stream is one live source: a fixed set of tracks written by exactly one
// publisher and read by any number of Readers. Write never blocks: each reader
// has its own bounded queue, and a reader whose queue is full is dropped with
// ErrReaderTooSlow (Subscribe) or skips to the next keyframe
// (SubscribeSkipping) rather than slowing the publisher or the other readers.
type Stream struct {
	// Name is the stream name, validated by ValidateName.
	Name string
	// Tracks are the stream's tracks, indexed by Track.ID.
	Tracks []*Track
	// Started is when the publish began. A resumed stream (Registry.Hold)
	// keeps its first publish's time.
	Started time.Time

	onKeyframe atomic.Pointer[func()] // nil while held

	mu      sync.Mutex
	readers map[*Reader]struct{}
	ended   bool
	done    chan struct{}
	// Resume state (resume.go), under mu.
	state     State
	since     time.Time // when state was entered
	reason    string    // why the publisher left, while interrupted
	resumes   int
	gap       time.Duration // the last interruption's length
	origin    time.Time     // the resumed timeline's DTS 0 (local clock)
	lastDTS   []int64       // by track ID: the last DTS written
	haveDTS   []bool
	lastWrite time.Time // local time of the last Write
	pendDisc  []bool    // by track ID: mark the next frame Discontinuity

	framesIn atomic.Uint64
	bytesIn  atomic.Uint64
	dropped  atomic.Uint64
	skips    map[string]*SkipCount    // by reader kind (ReaderKind), under mu
	configs  []atomic.Pointer[Config] // by track ID: the last Config written

	// forwards are the streams that get some of this one's tracks from
	// Write itself (Forward): copy on write, so Write loads without a lock
	// or an allocation.
	forwards atomic.Pointer[[]*forward]
	// hasVideo: the stream has a video track, so a skipping reader waits
	// for a keyframe (fixed at NewStream, as Tracks are).
	hasVideo bool
}

// forward is one Forward: the tracks (by ID) that go to dst.
type forward struct {
	dst  *Stream
	pass []bool
}

// NewStream makes a Stream. onKeyframeRequest, when not nil, is called by
// RequestKeyframe (ingest sends a PLI); it must not block.
func NewStream(name string, tracks []*Track, onKeyframeRequest func()) *Stream {
	for i, t := range tracks {
		t.ID = i
	}
	now := time.Now()
	s := &Stream{
		Name:     name,
		Tracks:   tracks,
		Started:  now,
		readers:  make(map[*Reader]struct{}),
		skips:    make(map[string]*SkipCount),
		done:     make(chan struct{}),
		configs:  make([]atomic.Pointer[Config], len(tracks)),
		since:    now,
		lastDTS:  make([]int64, len(tracks)),
		haveDTS:  make([]bool, len(tracks)),
		pendDisc: make([]bool, len(tracks)),
	}
	for _, t := range tracks {
		s.hasVideo = s.hasVideo || t.Kind == KindVideo
	}
	s.setKeyframeHook(onKeyframeRequest)
	return s
}

func (s *Stream) setKeyframeHook(fn func()) {
	if fn == nil {
		s.onKeyframe.Store(nil)
		return
	}
	s.onKeyframe.Store(&fn)
}

// Track returns the first track of the given kind, or nil.
func (s *Stream) Track(k Kind) *Track {
	for _, t := range s.Tracks {
		if t.Kind == k {
			return t
		}
	}
	return nil
}

// Write hands f to every reader. It must be called from one goroutine only
// (the publisher's) and never blocks.
//
// After a resume (Registry.Publish of a held stream) Write sets
// f.Discontinuity on the first frame of each track, and drops video frames
// until a keyframe, so the contract of Frame.Discontinuity holds whatever
// the publisher sends first.
func (s *Stream) Write(f *Frame) {
	id := -1
	if f.Track != nil && f.Track.ID >= 0 && f.Track.ID < len(s.configs) && s.Tracks[f.Track.ID] == f.Track {
		id = f.Track.ID
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return // a forward's last frame after its stop (Forward)
	}
	if id >= 0 {
		if s.pendDisc[id] {
			if f.Track.Kind == KindVideo && !f.Keyframe {
				s.mu.Unlock()
				return
			}
			s.pendDisc[id] = false
			f.Discontinuity = true
		}
		s.lastDTS[id], s.haveDTS[id] = f.DTS, true
		s.lastWrite = time.Now()
		// The pointer changes only when the parameters do: a load, rarely a store.
		if c := &s.configs[id]; f.Config != nil && c.Load() != f.Config {
			c.Store(f.Config)
		}
	}
	s.framesIn.Add(1)
	s.bytesIn.Add(uint64(len(f.Data)))
	keyframe := f.Track != nil && f.Track.Kind == KindVideo && f.Keyframe
	ask := false
	for r := range s.readers {
		if r.skipping {
			if !keyframe && s.hasVideo {
				r.skipCount.Frames++
				continue // never mid-GOP
			}
			r.skipping = false
		}
		select {
		case r.ch <- f:
		default:
			if !r.skip {
				delete(s.readers, r)
				s.dropped.Add(1)
				r.fail(ErrReaderTooSlow)
				continue
			}
			// Behind by a whole queue: what it holds is stale. It gets
			// ErrReaderSkipped in its place, then the next keyframe.
			n := uint64(0)
			for len(r.ch) > 0 {
				select {
				case <-r.ch:
					n++
				default:
				}
			}
			r.ch <- skipMarker // room: only this goroutine sends
			r.skipCount.Skips++
			r.skipCount.Frames += n
			r.skipping, ask = true, true
			if keyframe || !s.hasVideo {
				r.skipping = false
				r.ch <- f
			} else {
				r.skipCount.Frames++
			}
		}
	}
	s.mu.Unlock()
	if ask {
		s.RequestKeyframe() // must not block (NewStream)
	}
	if fw := s.forwards.Load(); fw != nil && id >= 0 {
		for _, x := range *fw {
			if x.pass[id] {
				c := *f
				c.Track = x.dst.Tracks[id]
				x.dst.Write(&c)
			}
		}
	}
}

// Forward writes every frame of s on a track that pass accepts to dst, on
// s's writer as s.Write runs (no goroutine, no queue in between): the same
// frame (bytes, *Config, times, flags) with dst's track of the same ID. dst
// must have as many tracks as s; it may have other writers for the tracks
// not forwarded (a stage that replaces one track and passes the others
// through, so that they never wait on the stage). stop ends the forwarding;
// a Write running at that moment may still deliver one frame, which dst
// drops once closed. stop may be called more than once.
func (s *Stream) Forward(dst *Stream, pass func(*Track) bool) (stop func()) {
	x := &forward{dst: dst, pass: make([]bool, len(s.Tracks))}
	for i, t := range s.Tracks {
		x.pass[i] = i < len(dst.Tracks) && pass(t)
	}
	s.mu.Lock()
	s.setForwards(append(s.forwardList(), x))
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			var keep []*forward
			for _, y := range s.forwardList() {
				if y != x {
					keep = append(keep, y)
				}
			}
			s.setForwards(keep)
		})
	}
}

// forwardList returns a copy of the forwards; s.mu is held.
func (s *Stream) forwardList() []*forward {
	if fw := s.forwards.Load(); fw != nil {
		return append([]*forward(nil), *fw...)
	}
	return nil
}

// setForwards publishes fw; s.mu is held.
func (s *Stream) setForwards(fw []*forward) {
	if len(fw) == 0 {
		s.forwards.Store(nil)
		return
	}
	s.forwards.Store(&fw)
}

// skipMarker stands in a reader's queue for the frames a skip dropped: Read
// turns it into ErrReaderSkipped.
var skipMarker = &Frame{}

// RequestKeyframe asks the publisher for a keyframe (a new reader needs one to
// start decoding). The publisher rate-limits these.
func (s *Stream) RequestKeyframe() {
	if fn := s.onKeyframe.Load(); fn != nil {
		(*fn)()
	}
}

// Subscribe adds a reader with a queue of queueLen frames (DefaultQueueLen when
// zero). name identifies the reader in logs and drop reasons. A new reader also
// triggers a keyframe request so it can start decoding soon. A reader whose
// queue overflows is dropped (ErrReaderTooSlow).
func (s *Stream) Subscribe(name string, queueLen int) *Reader {
	return s.subscribe(name, queueLen, false)
}

// SubscribeSkipping is Subscribe for a reader that stays: when its queue
// overflows it is not dropped but skips to the next keyframe, never mid-GOP.
// What it had queued is discarded, its next Read returns ErrReaderSkipped,
// and the one after that the stream's next video keyframe (the publisher is
// asked for one); on a stream without video, its next frame. Skips and the
// frames they cost are counted per reader kind (Skips).
func (s *Stream) SubscribeSkipping(name string, queueLen int) *Reader {
	return s.subscribe(name, queueLen, true)
}

func (s *Stream) subscribe(name string, queueLen int, skip bool) *Reader {
	if queueLen <= 0 {
		queueLen = DefaultQueueLen
	}
	r := &Reader{
		Name:   name,
		stream: s,
		ch:     make(chan *Frame, queueLen),
		failed: make(chan struct{}),
		skip:   skip,
	}
	s.mu.Lock()
	if s.ended {
		close(r.ch)
	} else {
		s.readers[r] = struct{}{}
		if skip {
			kind := ReaderKind(name)
			c := s.skips[kind]
			if c == nil {
				c = &SkipCount{}
				s.skips[kind] = c
			}
			r.skipCount = c
		}
	}
	s.mu.Unlock()
	s.RequestKeyframe()
	return r
}

// SkipCount is what falling behind cost the skipping readers of one kind.
type SkipCount struct {
	// Skips counts the times a reader's queue overflowed.
	Skips uint64
	// Frames counts the frames those readers did not get: the queue each
	// skip discarded and the frames before the next keyframe.
	Frames uint64
}

// ReaderKind is the kind of reader a name says: its first word, up to a
// space or colon ("transmux", "aac-stage", "rtmp", "whep"), so that
// per-reader counts have a bounded set of labels.
func ReaderKind(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] == ' ' || name[i] == ':' {
			return name[:i]
		}
	}
	return name
}

// Skips returns the skip counts of the stream's skipping readers by kind
// (ReaderKind), those gone included.
func (s *Stream) Skips() map[string]SkipCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]SkipCount, len(s.skips))
	for k, c := range s.skips {
		out[k] = *c
	}
	return out
}

// Close ends the stream: readers drain what is queued and then get
// ErrStreamEnded. Safe to call more than once.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	s.state, s.since = StateEnded, time.Now()
	close(s.done)
	for r := range s.readers {
		close(r.ch)
	}
	clear(s.readers)
}

// Done is closed when the stream has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Readers returns how many readers are attached.
func (s *Stream) Readers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.readers)
}

// Stats returns the frames and payload bytes written so far.
func (s *Stream) Stats() (frames, bytes uint64) {
	return s.framesIn.Load(), s.bytesIn.Load()
}

// Dropped counts the readers dropped for falling behind (ErrReaderTooSlow).
func (s *Stream) Dropped() uint64 { return s.dropped.Load() }

// LastConfig returns the newest codec configuration written on track t (nil
// before its first keyframe): the API reads the picture size from it.
func (s *Stream) LastConfig(t *Track) *Config {
	if t == nil || t.ID < 0 || t.ID >= len(s.Tracks) || s.Tracks[t.ID] != t {
		return nil
	}
	return s.configs[t.ID].Load()
}

func (s *Stream) remove(r *Reader) {
	s.mu.Lock()
	if _, ok := s.readers[r]; ok {
		delete(s.readers, r)
		close(r.ch)
	}
	s.mu.Unlock()
}

// Reader receives a Stream's frames in order through a bounded queue. A Reader
// is used by one goroutine.
type Reader struct {
	// Name identifies the reader in logs.
	Name string

	stream *Stream
	ch     chan *Frame

	failOnce sync.Once
	failed   chan struct{}
	err      error
	closed   atomic.Bool

	// SubscribeSkipping's state, under the stream's mu.
	skip      bool       // skips instead of being dropped
	skipping  bool       // behind: frames wait for the next keyframe
	skipCount *SkipCount // its kind's counts in the stream
}

// Stream returns the stream being read.
func (r *Reader) Stream() *Stream { return r.stream }

// fail is called with the stream's lock held.
func (r *Reader) fail(err error) {
	r.failOnce.Do(func() {
		r.err = err
		close(r.failed)
	})
}

// Read returns the next frame. It returns ErrStreamEnded after the last frame
// of an ended stream, ErrReaderTooSlow if the reader was dropped,
// ErrReaderSkipped where a skipping reader skipped,
// ErrReaderClosed after Close, or ctx.Err().
func (r *Reader) Read(ctx context.Context) (*Frame, error) {
	select {
	case <-r.failed:
		return nil, r.err
	default:
	}
	select {
	case f, ok := <-r.ch:
		if !ok {
			if r.closed.Load() {
				return nil, ErrReaderClosed
			}
			return nil, ErrStreamEnded
		}
		if f == skipMarker {
			return nil, ErrReaderSkipped
		}
		return f, nil
	case <-r.failed:
		return nil, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Len returns how many frames are queued.
func (r *Reader) Len() int { return len(r.ch) }

// Close detaches the reader. Safe to call more than once.
func (r *Reader) Close() {
	r.closed.Store(true)
	r.stream.remove(r)
}
