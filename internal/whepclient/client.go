// Package whepclient is a WHEP (draft-ietf-wish-whep) viewer for tests: it
// POSTs a recvonly offer, receives H.264 and Opus over a pion
// PeerConnection, reassembles H.264 access units from RTP and counts what
// arrived, so tests can check that playback starts at a keyframe.
package whepclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/whipcast/whipcast/internal/wish"
)

// Options tune a playback. The zero value uses any interface.
type Options struct {
	// LoopbackOnly restricts ICE to "lo" with loopback candidates.
	LoopbackOnly bool
	// HTTPClient is used for the WHEP requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Signal, when set, takes the SDP offer and returns the answer in place
	// of the WHEP POST (another signalling channel, e.g. the room socket);
	// the endpoint is then unused and Close sends no DELETE.
	Signal func(ctx context.Context, offer string) (answer string, err error)
}

// Stats is what the viewer received.
type Stats struct {
	// VideoFrames counts whole H.264 access units (RTP marker bit seen);
	// Keyframes those with an IDR slice.
	VideoFrames, Keyframes int
	// FirstVideoKeyframe and FirstVideoHasSPS describe the first access
	// unit: it must be an IDR with its SPS/PPS in front.
	FirstVideoKeyframe, FirstVideoHasSPS bool
	// AudioPackets counts Opus RTP packets.
	AudioPackets int
	// VideoCodec and AudioCodec are the negotiated MIME types.
	VideoCodec, AudioCodec string
	// FirstVideo is when the first access unit completed.
	FirstVideo time.Time
}

// ErrStatus is wrapped by Play when the server answers the POST with
// anything but 201; StatusError carries the code.
var ErrStatus = wish.ErrStatus

// StatusError is the server's refusal of a POST.
type StatusError = wish.StatusError

// Client is one running playback.
type Client struct {
	res wish.Resource
	pc  *webrtc.PeerConnection
	wg  sync.WaitGroup

	mu        sync.Mutex
	stats     Stats
	videoSSRC uint32
	ended     chan struct{} // closed when the server ends the connection
	endOnce   sync.Once

	closeOnce sync.Once
	closeErr  error
}

// Play POSTs a recvonly offer (video + audio) to endpoint and waits for the
// connection. token, when not empty, is sent as a Bearer token.
func Play(ctx context.Context, endpoint, token string, opts Options) (*Client, error) {
	c := &Client{res: wish.Resource{HTTP: opts.HTTPClient, Token: token, Client: "whepclient"}, ended: make(chan struct{})}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
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
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(err)
		}
	}
	pc.OnTrack(c.onTrack)
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
			c.endOnce.Do(func() { close(c.ended) })
		}
	})
	if err := c.res.Negotiate(ctx, pc, endpoint, connected, opts.Signal, func() { _ = c.delete(context.Background()) }); err != nil {
		return fail(err)
	}
	return c, nil
}

func (c *Client) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	c.mu.Lock()
	if video {
		c.stats.VideoCodec = tr.Codec().MimeType
		c.videoSSRC = uint32(tr.SSRC())
	} else {
		c.stats.AudioCodec = tr.Codec().MimeType
	}
	c.mu.Unlock()
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		for {
			if _, _, err := recv.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		if video {
			c.readVideo(tr)
		} else {
			c.readAudio(tr)
		}
	}()
}

func (c *Client) readAudio(tr *webrtc.TrackRemote) {
	for {
		if _, _, err := tr.ReadRTP(); err != nil {
			return
		}
		c.mu.Lock()
		c.stats.AudioPackets++
		c.mu.Unlock()
	}
}

// readVideo depacketizes H.264 (RFC 6184) into Annex-B access units, ended
// by the marker bit.
func (c *Client) readVideo(tr *webrtc.TrackRemote) {
	var dp codecs.H264Packet
	var au []byte
	var lastSeq uint16
	first := true
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if !first && pkt.SequenceNumber != lastSeq+1 {
			au = au[:0] // lost a packet: drop the broken access unit
		}
		first = false
		lastSeq = pkt.SequenceNumber
		b, err := dp.Unmarshal(pkt.Payload)
		if err == nil {
			au = append(au, b...)
		}
		if pkt.Marker && len(au) > 0 {
			c.frame(au)
			au = au[:0]
		}
	}
}

func (c *Client) frame(au []byte) {
	idr, sps := false, false
	for _, nal := range bytes.Split(au, []byte{0, 0, 1}) {
		if len(nal) == 0 {
			continue
		}
		switch nal[0] & 0x1f {
		case 5:
			idr = true
		case 7:
			sps = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats.VideoFrames == 0 {
		c.stats.FirstVideoKeyframe, c.stats.FirstVideoHasSPS = idr, sps
		c.stats.FirstVideo = time.Now()
	}
	c.stats.VideoFrames++
	if idr {
		c.stats.Keyframes++
	}
}

// RequestKeyframe sends a PLI for the video track, as a decoder would.
func (c *Client) RequestKeyframe() error {
	c.mu.Lock()
	ssrc := c.videoSSRC
	c.mu.Unlock()
	if ssrc == 0 {
		return errors.New("whepclient: no video track yet")
	}
	return c.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// Stats returns what has arrived so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Ended is closed when the connection is lost or closed by the server.
func (c *Client) Ended() <-chan struct{} { return c.ended }

// Location is the session URL returned by the server.
func (c *Client) Location() string { return c.res.Location }

func (c *Client) delete(ctx context.Context) error {
	code, err := c.res.Delete(ctx)
	// 404: the server ended the session first (the stream ended).
	if err == nil && code != 0 && code != http.StatusOK && code != http.StatusNotFound {
		err = fmt.Errorf("whepclient: DELETE: %d %s", code, http.StatusText(code))
	}
	return err
}

// Close DELETEs the session and closes the connection. Safe to call more
// than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
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
