package rtmp

import (
	"math"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/whipcast/whipcast/media"
)

// msgKind tells which RTMP message a muxed item becomes.
type msgKind int

const (
	msgVideo msgKind = iota + 1
	msgAudio
)

// message is one RTMP audio or video message ready to send.
type message struct {
	kind msgKind
	ts   uint32 // ms since the start keyframe
	body []byte
	// header marks a sequence header (AVC/AAC config, OpusHead): it shares
	// its frame's ms, every other message of a track has its own.
	header bool
}

// interleaveLimit is how far the newest frame may run ahead of a silent track
// before the muxer stops waiting for it.
const interleaveLimit = 500 // ms

// maxEarly bounds the audio frames kept while waiting for the start keyframe
// (interleaveLimit of 20 ms packets is 25).
const maxEarly = 64

// muxer turns a stream's frames into FLV tag bodies with RTMP timestamps:
// it starts at a video keyframe (sequence headers first) together with the
// audio of that instant, even audio read before the keyframe, converts the
// stream timeline into ms since that keyframe, and interleaves audio and
// video in DTS order. AAC frames arrive a little later than the video of the
// same instant (encoder delay), so video waits in a small buffer until audio
// has caught up or interleaveLimit has passed.
type muxer struct {
	video, audio *media.Track

	started  bool
	base     float64 // seconds of the stream timeline at ms 0
	vcfg     *media.Config
	aSent    bool
	acfg     *media.Config // the AAC config of the sequence header sent
	pending  []message
	latest   [3]int64 // newest ms queued per msgKind
	seen     [3]bool
	lastSent int64
	// lastFrame is the ms of the last frame (not header) sent per msgKind:
	// RTMP at 1 ms resolution must give every frame of a track a later ms
	// than the one before, or players see two frames at one instant.
	lastFrame [3]int64
	vDTS      []int64 // the first two video DTS, for the frame rate
	// early holds the audio read while waiting for the start keyframe:
	// audio reaches the stream before the video of the same instant when a
	// keyframe takes longer to arrive than the audio sent with it.
	early []*media.Frame
}

// frameRate estimates the video frame rate from the first two frames (0 if
// not known yet); RTMP services show it, nothing depends on it.
func (m *muxer) frameRate() float64 {
	if len(m.vDTS) < 2 || m.vDTS[1] <= m.vDTS[0] {
		return 0
	}
	return math.Round(float64(m.video.ClockRate)/float64(m.vDTS[1]-m.vDTS[0])*100) / 100
}

func newMuxer(video, audio *media.Track) *muxer {
	return &muxer{video: video, audio: audio, lastSent: -1, lastFrame: [3]int64{-1, -1, -1}}
}

// resync drops everything queued and waits for the next keyframe, keeping
// the timeline (same connection, timestamps carry on).
func (m *muxer) resync() {
	m.pending = m.pending[:0]
	m.vcfg = nil
	m.seen = [3]bool{}
	m.started = false
	clear(m.early)
	m.early = m.early[:0]
}

// push adds one frame and returns the messages now ready, in send order.
func (m *muxer) push(f *media.Frame) (ready []message, err error) {
	isVideo := f.Track.Kind == media.KindVideo
	if isVideo && (m.video == nil || f.Track.ID != m.video.ID) || !isVideo && (m.audio == nil || f.Track.ID != m.audio.ID) {
		return nil, nil
	}
	if !m.started {
		if m.video != nil && !(isVideo && f.Keyframe && f.Config != nil) {
			if !isVideo {
				m.keepEarly(f)
			}
			return nil, nil // wait for a keyframe with its parameter sets
		}
		if m.lastSent < 0 {
			m.base = f.Seconds(f.DTS)
		}
		m.started = true
		if err := m.add(f); err != nil {
			return nil, err
		}
		// Audio read before the keyframe may be of its instant or later (a
		// large keyframe completes after the audio sent with it): it starts
		// with the keyframe; what is older than the keyframe is dropped.
		for i, a := range m.early {
			if err := m.add(a); err != nil {
				return nil, err
			}
			m.early[i] = nil
		}
		m.early = m.early[:0]
		return m.ready(), nil
	}
	if err := m.add(f); err != nil {
		return nil, err
	}
	return m.ready(), nil
}

// keepEarly remembers an audio frame read while waiting for the start
// keyframe, forgetting those more than interleaveLimit older than it.
func (m *muxer) keepEarly(f *media.Frame) {
	now := f.Seconds(f.DTS)
	n := 0
	for n < len(m.early) && (now-m.early[n].Seconds(m.early[n].DTS))*1000 > interleaveLimit || len(m.early)-n >= maxEarly {
		m.early[n] = nil
		n++
	}
	m.early = append(m.early[:0], m.early[n:]...)
	m.early = append(m.early, f)
}

// add queues the messages of one frame of a started muxer.
func (m *muxer) add(f *media.Frame) error {
	isVideo := f.Track.Kind == media.KindVideo
	ms := int64(math.Round((f.Seconds(f.DTS) - m.base) * 1000))
	if ms < 0 || !isVideo && ms < m.lastSent {
		// Audio from before the start keyframe, or later than the
		// interleave window allows: dropped rather than sent out of time.
		return nil
	}
	if isVideo {
		if f.Config != nil && f.Config != m.vcfg {
			if !f.Keyframe {
				return nil // a new configuration begins at a keyframe
			}
			seq, err := videoSequenceHeader(f.Config)
			if err != nil {
				return err
			}
			m.vcfg = f.Config
			m.queue(message{kind: msgVideo, body: seq, header: true}, ms)
		}
		if len(m.vDTS) < 2 {
			m.vDTS = append(m.vDTS, f.DTS)
		}
		cts := int32(math.Round(float64(f.PTS-f.DTS) * 1000 / float64(f.Track.ClockRate)))
		m.queue(message{kind: msgVideo, body: videoFrame(f.Data, f.Keyframe, cts)}, ms)
		return nil
	}
	if m.audio.Codec == media.CodecOpus {
		// E-RTMP: the OpusHead sequence start, then one packet per message.
		if !m.aSent {
			m.aSent = true
			m.queue(message{kind: msgAudio, body: opusSequenceStart(m.audio.Channels), header: true}, ms)
		}
		m.queue(message{kind: msgAudio, body: opusFrame(f.Data)}, ms)
		return nil
	}
	if !m.aSent {
		if f.Config == nil || len(f.Config.AudioSpecificConfig) == 0 {
			return nil
		}
		m.aSent, m.acfg = true, f.Config
		m.queue(message{kind: msgAudio, body: audioTag(f.Config.AudioSpecificConfig, true), header: true}, ms)
	}
	m.queue(message{kind: msgAudio, body: audioTag(f.Data, false)}, ms)
	return nil
}

// audioInfo is the audio track as onMetaData should describe it: for AAC
// with the channel count of the AudioSpecificConfig sent (the Opus→AAC
// stage decides mono or stereo at the source's first packet and leaves
// Track.Channels 0).
func (m *muxer) audioInfo() *media.Track {
	a := m.audio
	if a == nil || a.Codec != media.CodecAAC || m.acfg == nil {
		return a
	}
	var c mpeg4audio.AudioSpecificConfig
	if err := c.Unmarshal(m.acfg.AudioSpecificConfig); err != nil || c.ChannelConfig < 1 || c.ChannelConfig > 2 {
		return a
	}
	if n := int(c.ChannelConfig); n != a.Channels {
		t := *a
		t.Channels = n
		return &t
	}
	return a
}

// queue inserts msg at ms after every queued message with ms' ≤ ms, which
// keeps each track's order and a sequence header before its frame.
func (m *muxer) queue(msg message, ms int64) {
	msg.ts = uint32(ms)
	i := len(m.pending)
	for i > 0 && int64(m.pending[i-1].ts) > ms {
		i--
	}
	m.pending = append(m.pending, message{})
	copy(m.pending[i+1:], m.pending[i:])
	m.pending[i] = msg
	m.latest[msg.kind], m.seen[msg.kind] = ms, true
}

func (m *muxer) ready() []message {
	// Everything at or before the slowest live track's newest frame is safe.
	limit := int64(math.MaxInt64)
	newest := int64(math.MinInt64)
	for _, k := range []msgKind{msgVideo, msgAudio} {
		if (k == msgVideo && m.video == nil) || (k == msgAudio && m.audio == nil) {
			continue
		}
		if m.seen[k] {
			newest = max(newest, m.latest[k])
		}
	}
	for _, k := range []msgKind{msgVideo, msgAudio} {
		if (k == msgVideo && m.video == nil) || (k == msgAudio && m.audio == nil) {
			continue
		}
		if !m.seen[k] || m.latest[k] < newest-interleaveLimit {
			// A track that is silent (or not started) holds nothing back for long.
			limit = min(limit, newest-interleaveLimit)
			continue
		}
		limit = min(limit, m.latest[k])
	}
	n := 0
	for n < len(m.pending) && int64(m.pending[n].ts) <= limit {
		n++
	}
	out := make([]message, n)
	copy(out, m.pending[:n])
	m.pending = append(m.pending[:0], m.pending[n:]...)
	for i := range out {
		// Monotonic timestamps, whatever the source did: never before the
		// last message, and a frame strictly after its track's last frame.
		ts := max(int64(out[i].ts), m.lastSent)
		if k := out[i].kind; !out[i].header {
			ts = max(ts, m.lastFrame[k]+1)
			m.lastFrame[k] = ts
		}
		out[i].ts = uint32(ts)
		m.lastSent = ts
	}
	return out
}
