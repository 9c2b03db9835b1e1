// Package whipclient is a WHIP (RFC 9725) publisher for tests: it sends an
// H.264 Annex-B file and an Ogg/Opus file over a pion PeerConnection, paced
// in real time, to a WHIP endpoint.
package whipclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/internal/wish"
)

// Options tune a publish. The zero value sends each file once over any
// interface.
type Options struct {
	// Loop is how many times the files are sent. Default 1.
	Loop int
	// MaxDuration stops sending after this long. Default: no limit.
	MaxDuration time.Duration
	// Drain makes Wait also wait, bounded, until the gateway's receiver
	// reports show the last packet of each track received (see drain), for
	// a test that counts every frame of a publish it DELETEs right after.
	Drain bool
	// LoopbackOnly restricts ICE to the "lo" interface with loopback
	// candidates, so test traffic stays on 127.0.0.1.
	LoopbackOnly bool
	// FPS is the video frame rate the file is paced at. Default 30.
	FPS int
	// HTTPClient is used for the WHIP requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Signal, when set, takes the SDP offer and returns the answer in place
	// of the WHIP POST (another signalling channel, e.g. the room socket);
	// the endpoint is then unused and Close sends no DELETE.
	Signal func(ctx context.Context, offer string) (answer string, err error)
	// SkipDelete makes Close leave without the WHIP DELETE: it only closes
	// the PeerConnection, as a publisher that crashed or lost its network
	// would (tests of the gateway's reconnect window).
	SkipDelete bool
	// SRClockScale makes the Sender Reports lie: their NTP time advances
	// this many times as fast as real time from the first SR on (2 and 0.5
	// are issue 11's clocks). Default 1 (honest).
	SRClockScale float64
	// SRJump moves the NTP time of every Sender Report sent SRJumpAfter or
	// more after the first by this much (a sender clock that steps).
	// Default 0.
	SRJump      time.Duration
	SRJumpAfter time.Duration
	// Loss drops this fraction (0..1) of the RTP packets sent, at random,
	// retransmissions included: it sits below the NACK responder, as a
	// lossy uplink would. Default 0.
	Loss float64
	// Jitter delays each RTP packet by a random time in [0, Jitter), which
	// also reorders them. Default 0.
	Jitter time.Duration
	// Seed seeds the randomness of Loss and Jitter. Default 0 (still
	// deterministic per packet order).
	Seed int64
	// AnswerPLI makes a PLI answered as an encoder would: the next frame
	// sent is the file's next keyframe (the frames before it are skipped,
	// not sent; timestamps run on). Default false: PLIs are ignored, like
	// OBS, and keyframes come as the file has them.
	AnswerPLI bool
	// PLIThrottle, with AnswerPLI, ignores a PLI that comes within this
	// long of the last one answered, as libwebrtc senders (Chromium and
	// the other browsers) do with 300 ms. Default 0: every PLI is answered.
	PLIThrottle time.Duration
	// NoNACK turns pion's NACK responder off: lost packets stay lost.
	// Default false (NACKs are answered, from a 1024-packet history).
	NoNACK bool
}

// Stats counts what was sent.
type Stats struct {
	// VideoFrames and AudioPackets are the samples written.
	VideoFrames, AudioPackets int
	// PLIs counts the RTCP Picture Loss Indications received for video
	// (answered only with Options.AnswerPLI).
	PLIs int
	// PLIsThrottled counts the PLIs ignored for Options.PLIThrottle.
	PLIsThrottled int
	// Skipped counts the frames skipped to answer PLIs (not sent).
	Skipped int
	// NACKs counts the sequence numbers the receiver asked to be resent
	// (pion's NACK responder answers them).
	NACKs int
	// Dropped counts the RTP packets the Loss option dropped.
	Dropped int
	// ReceiverReports counts the RTCP receiver report blocks received
	// about our tracks; Lost sums the latest cumulative packets-lost of
	// each of our SSRCs, and MaxFractionLost is the largest fraction lost
	// (0..1) any one report gave: the receiver's own view of the loss.
	ReceiverReports int
	Lost            int
	MaxFractionLost float64
	// Late counts the samples written more than one sample duration after
	// their due time, and MaxLate is the largest lateness: whether the
	// sender kept up with real time (a load tool on a busy machine).
	Late    int
	MaxLate time.Duration
	// Start is the wall time of the first video frame and the first audio
	// packet: video frame i is sent at Start + i/FPS, audio packet j at
	// Start + j×20 ms.
	Start time.Time
}

// Client is one running publish.
type Client struct {
	opts Options
	// res is the session resource; its ETag is of the current ICE session
	// (201, then each restart's 200), under mu once Publish returned.
	res wish.Resource
	pc  *webrtc.PeerConnection

	cancel context.CancelFunc
	wg     sync.WaitGroup // senders and RTCP readers
	sent   chan struct{}  // closed when both senders are done

	keyframeWanted atomic.Bool // a PLI to answer (AnswerPLI)

	mu      sync.Mutex
	stats   Stats
	lost    map[uint32]int    // latest cumulative lost per SSRC, from RRs
	highest map[uint32]uint16 // highest sequence number received per SSRC, from RRs
	rr      chan struct{}     // signalled at each RR (drain)

	lastSent  *lastSent
	drainOnce sync.Once
	sendErr   error

	closeOnce sync.Once
	closeErr  error
}

// Publish POSTs an offer to endpoint, waits for the connection and starts
// sending the files. token, when not empty, is sent as a Bearer token.
func Publish(ctx context.Context, endpoint, token, h264AnnexBPath, oggOpusPath string, opts Options) (*Client, error) {
	if opts.Loop <= 0 {
		opts.Loop = 1
	}
	if opts.FPS <= 0 {
		opts.FPS = 30
	}
	c := &Client{opts: opts, res: wish.Resource{HTTP: opts.HTTPClient, Token: token, Client: "whipclient"}, sent: make(chan struct{})}
	for _, p := range []string{h264AnnexBPath, oggOpusPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}

	m := &webrtc.MediaEngine{}
	// The default codecs list VP8 before H.264, like Chromium's offer.
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	c.lastSent = &lastSent{last: map[uint32]uint16{}}
	c.rr = make(chan struct{}, 1)
	ir.Add(lastSentFactory{c.lastSent}) // innermost: what leaves, after the Loss option's drops
	if opts.lyingSRs() {
		ir.Add(srClockFactory{opts}) // first: below the report interceptor
	}
	if opts.Loss > 0 || opts.Jitter > 0 {
		// Innermost writer but for the SR rewrite: the NACK responder's
		// resends pass through it too.
		ir.Add(newLossyLink(opts.Loss, opts.Jitter, opts.Seed, &c.mu, &c.stats.Dropped))
	}
	var iopts []webrtc.InterceptorOption
	if opts.NoNACK {
		iopts = append(iopts, webrtc.WithNackResponderOptions(
			nack.ResponderStreamsFilter(func(*interceptor.StreamInfo) bool { return false })))
	}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, ir, iopts...); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	if opts.LoopbackOnly {
		wish.LoopbackOnly(&se)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	c.pc = pc
	fail := func(err error) (*Client, error) {
		_ = pc.Close()
		c.wg.Wait()
		return nil, err
	}

	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "whipclient")
	if err != nil {
		return fail(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "whipclient")
	if err != nil {
		return fail(err)
	}
	for _, t := range []webrtc.TrackLocal{video, audio} {
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fail(err)
		}
		sender := tr.Sender()
		c.wg.Add(1)
		go func() { // RTCP must be read for NACK/PLI to be processed
			defer c.wg.Done()
			var lastPLI time.Time // the last PLI answered (PLIThrottle)
			for {
				pkts, _, err := sender.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					switch p := p.(type) {
					case *rtcp.PictureLossIndication:
						now := time.Now()
						c.mu.Lock()
						c.stats.PLIs++
						take := opts.AnswerPLI && (opts.PLIThrottle <= 0 || lastPLI.IsZero() || now.Sub(lastPLI) >= opts.PLIThrottle)
						if take {
							lastPLI = now
						} else if opts.AnswerPLI {
							c.stats.PLIsThrottled++
						}
						c.mu.Unlock()
						if take {
							c.keyframeWanted.Store(true)
						}
					case *rtcp.ReceiverReport:
						c.receiverReport(p)
					case *rtcp.TransportLayerNack:
						n := 0
						for _, pair := range p.Nacks {
							n += len(pair.PacketList())
						}
						c.mu.Lock()
						c.stats.NACKs += n
						c.mu.Unlock()
					}
				}
			}
		}()
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})

	if err := c.res.Negotiate(ctx, pc, endpoint, connected, opts.Signal, func() { _ = c.delete(context.Background()) }); err != nil {
		return fail(err)
	}

	var sctx context.Context
	var cancel context.CancelFunc
	if opts.MaxDuration > 0 {
		sctx, cancel = context.WithTimeout(context.Background(), opts.MaxDuration)
	} else {
		sctx, cancel = context.WithCancel(context.Background())
	}
	c.cancel = cancel
	start := time.Now().Add(20 * time.Millisecond)
	c.stats.Start = start
	var senders sync.WaitGroup
	senders.Add(2)
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		defer senders.Done()
		c.setErr(c.sendVideo(sctx, video, h264AnnexBPath, start))
	}()
	go func() {
		defer c.wg.Done()
		defer senders.Done()
		c.setErr(c.sendAudio(sctx, audio, oggOpusPath, start))
	}()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		senders.Wait()
		close(c.sent)
	}()
	return c, nil
}

// receiverReport folds an RTCP RR's blocks into the loss counters.
func (c *Client) receiverReport(rr *rtcp.ReceiverReport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost == nil {
		c.lost = map[uint32]int{}
		c.highest = map[uint32]uint16{}
	}
	for _, r := range rr.Reports {
		c.stats.ReceiverReports++
		c.lost[r.SSRC] = cumulativeLost(r.TotalLost)
		c.highest[r.SSRC] = uint16(r.LastSequenceNumber)
		c.stats.MaxFractionLost = max(c.stats.MaxFractionLost, float64(r.FractionLost)/256)
	}
	c.stats.Lost = 0
	for _, n := range c.lost {
		c.stats.Lost += n
	}
	select {
	case c.rr <- struct{}{}:
	default:
	}
}

// cumulativeLost reads a report block's cumulative number of packets lost,
// a signed 24-bit field (RFC 3550 §6.4.1): duplicates make it negative.
// pion's rtcp keeps the 24 bits in an unsigned TotalLost, where −1 would
// read as 16,777,215 packets lost.
func cumulativeLost(v uint32) int {
	return int(int32(v<<8) >> 8)
}

func (c *Client) setErr(err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	c.mu.Lock()
	if c.sendErr == nil {
		c.sendErr = err
	}
	c.mu.Unlock()
}

func (c *Client) delete(ctx context.Context) error {
	if c.opts.SkipDelete {
		return nil
	}
	code, err := c.res.Delete(ctx)
	if err == nil && code != 0 && code != http.StatusOK {
		err = fmt.Errorf("whipclient: DELETE: %d %s", code, http.StatusText(code))
	}
	return err
}

// Location is the session URL returned by the server.
func (c *Client) Location() string { return c.res.Location }

// Stats returns what has been sent so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Wait blocks until the files are sent (or MaxDuration passed) and the
// gateway has reported receiving the last packet of each track (RTCP RR,
// bounded: see drain), and returns the counts.
func (c *Client) Wait() (Stats, error) {
	<-c.sent
	if c.opts.Drain {
		c.drainOnce.Do(c.drain)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats, c.sendErr
}

// Close stops sending, DELETEs the session and closes the connection. Safe
// to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.sent
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.closeErr = c.delete(ctx)
		if err := c.pc.Close(); err != nil && c.closeErr == nil {
			c.closeErr = err
		}
		c.wg.Wait()
	})
	return c.closeErr
}
