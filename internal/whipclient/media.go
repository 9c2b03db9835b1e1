package whipclient

// The media the client sends: H.264 Annex B and Ogg Opus files, paced in real time.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// paced records how late a sample due at due was written (Stats.Late).
// Called with c.mu held.
func (c *Client) paced(due time.Time, dur time.Duration) {
	late := time.Since(due)
	if late > dur {
		c.stats.Late++
	}
	c.stats.MaxLate = max(c.stats.MaxLate, late)
}

// sleepUntil waits for t or ctx.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendVideo writes one sample per access unit (all NAL units up to and
// including a slice, as Annex-B), paced at FPS.
func (c *Client) sendVideo(ctx context.Context, track *webrtc.TrackLocalStaticSample, path string, start time.Time) error {
	frameDur := time.Second / time.Duration(c.opts.FPS)
	n := 0
	for loop := 0; loop < c.opts.Loop; loop++ {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		r, err := h264reader.NewReader(f)
		if err != nil {
			f.Close()
			return err
		}
		var au []byte
		for {
			nal, err := r.NextNAL()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
			au = append(au, 0, 0, 0, 1)
			au = append(au, nal.Data...)
			if nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr {
				continue
			}
			if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr {
				c.keyframeWanted.Store(false)
			} else if c.keyframeWanted.Load() {
				// Answering a PLI: on to the next keyframe at once.
				au = nil
				c.mu.Lock()
				c.stats.Skipped++
				c.mu.Unlock()
				continue
			}
			due := start.Add(time.Duration(n) * frameDur)
			if err := sleepUntil(ctx, due); err != nil {
				f.Close()
				return err
			}
			if err := track.WriteSample(media.Sample{Data: au, Duration: frameDur}); err != nil {
				f.Close()
				return err
			}
			au = nil
			n++
			c.mu.Lock()
			c.stats.VideoFrames = n
			c.paced(due, frameDur)
			c.mu.Unlock()
		}
		f.Close()
	}
	return nil
}

// sendAudio writes one sample per Ogg page (one 20 ms Opus packet each).
func (c *Client) sendAudio(ctx context.Context, track *webrtc.TrackLocalStaticSample, path string, start time.Time) error {
	const pktDur = 20 * time.Millisecond
	n := 0
	for loop := 0; loop < c.opts.Loop; loop++ {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		r, _, err := oggreader.NewWith(f)
		if err != nil {
			f.Close()
			return err
		}
		for {
			page, _, err := r.ParseNextPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
			if bytes.HasPrefix(page, []byte("OpusTags")) || len(page) == 0 {
				continue
			}
			due := start.Add(time.Duration(n) * pktDur)
			if err := sleepUntil(ctx, due); err != nil {
				f.Close()
				return err
			}
			if err := track.WriteSample(media.Sample{Data: page, Duration: pktDur}); err != nil {
				f.Close()
				return err
			}
			n++
			c.mu.Lock()
			c.stats.AudioPackets = n
			c.paced(due, pktDur)
			c.mu.Unlock()
		}
		f.Close()
	}
	return nil
}
