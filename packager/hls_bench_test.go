package packager

import (
	"testing"
	"time"

	"github.com/whipcast/whipcast/media"
	"github.com/whipcast/whipcast/transmux"
)

// BenchmarkRenderMediaPlaylist renders the video playlist of a full window
// (7 segments, parts of the last ones, a preload hint).
func BenchmarkRenderMediaPlaylist(b *testing.B) {
	fx := loadFixture(b)
	h := NewHLS(HLSSettings{}, nil)
	defer h.Close()
	st := newHLSStream(h, "live/cam", "e1")
	tm, _ := transmux.New(h.set.tm, fx.Tracks(), st)
	for _, f := range fx.Frames[:len(fx.Frames)*85/100] {
		_ = tm.WriteFrame(f)
	}
	t := st.track("video")
	buf := st.renderMedia(nil, t)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = st.renderMedia(buf[:0], t)
	}
}

// BenchmarkFramesToPlaylist runs frames through transmux into the HLS state
// and renders the changed media playlists after every frame, as a reloading
// client would. One op is one frame.
func BenchmarkFramesToPlaylist(b *testing.B) {
	fx := loadFixture(b)
	h := NewHLS(HLSSettings{}, nil)
	defer h.Close()
	st := newHLSStream(h, "live/cam", "e1")
	tm, _ := transmux.New(h.set.tm, fx.Tracks(), st)
	// Both tracks loop every 10 s exactly; audio past 10 s is left out.
	span := map[*media.Track]int64{fx.Video: 900000, fx.Audio: 480000}
	var src []*media.Frame
	size := 0
	for _, f := range fx.Frames {
		if f.DTS < span[f.Track] {
			src = append(src, f)
			size += len(f.Data)
		}
	}
	var copies [2][]media.Frame
	copies[0] = make([]media.Frame, len(src))
	copies[1] = make([]media.Frame, len(src))
	b.SetBytes(int64(size / len(src)))
	b.ReportAllocs()
	pass, i := 0, 0
	for b.Loop() {
		f := &copies[pass%2][i]
		*f = *src[i]
		off := int64(pass) * span[f.Track]
		f.DTS += off
		f.PTS += off
		f.Time = f.Time.Add(time.Duration(pass) * 10 * time.Second)
		if i++; i == len(src) {
			i, pass = 0, pass+1
		}
		_ = tm.WriteFrame(f)
		st.mu.Lock()
		for _, t := range st.tracks {
			if t.cache == nil {
				t.cache = st.renderMedia(nil, t)
			}
		}
		st.mu.Unlock()
	}
}
