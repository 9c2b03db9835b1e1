// Package filter runs per-stream picture and sound filters (rotate, scale,
// crop, text, image overlay, audio gain) as an upstream stage: it reads a
// source media.Stream, decodes, filters, encodes and publishes the result as
// a new Stream named {stream}/filtered (see Stages for why).
//
// Filters share one tiny interface, an embeddable no-op base and a Chain,
// after pion/interceptor's shape: a new filter is one file that embeds NoOp
// and overrides the method of the medium it changes. Each filter contributes
// a fragment of a libavfilter graph; all codec work goes through stages/codec.
package filter

import (
	"fmt"
	"strings"
)

// Filter is one step of a chain.
type Filter interface {
	// Video returns this filter's part of the video graph: a libavfilter
	// chain that reads the pad labelled in and writes the pad labelled out,
	// e.g. "[in]transpose=clock[out]". "" leaves the video alone.
	Video(in, out string) string
	// Audio is Video for the audio graph.
	Audio(in, out string) string
}

// NoOp is the base every filter embeds: it changes nothing.
type NoOp struct{}

// Video implements Filter.
func (NoOp) Video(string, string) string { return "" }

// Audio implements Filter.
func (NoOp) Audio(string, string) string { return "" }

// Chain applies filters in order.
type Chain []Filter

// VideoGraph is the whole video graph, its ends labelled [in] and [out]
// (the labels stages/codec expects), or "" when no filter touches video.
func (c Chain) VideoGraph() string { return c.graph(Filter.Video) }

// AudioGraph is VideoGraph for audio.
func (c Chain) AudioGraph() string { return c.graph(Filter.Audio) }

func (c Chain) graph(part func(Filter, string, string) string) string {
	var parts []string
	prev := "in"
	for i, f := range c {
		out := fmt.Sprintf("f%d", i+1)
		if p := part(f, prev, out); p != "" {
			parts = append(parts, p)
			prev = out
		}
	}
	if len(parts) == 0 {
		return ""
	}
	// The last filter writes [out], the sink's label.
	last := parts[len(parts)-1]
	parts[len(parts)-1] = strings.TrimSuffix(last, "["+prev+"]") + "[out]"
	return strings.Join(parts, ";")
}

// escape quotes a value for a filter option and then for the graph, the two
// levels of libavfilter's escaping (ffmpeg-filters(1) "Notes on filtergraph
// escaping").
func escape(v string) string {
	const level = `\':`
	const graph = `\'[],;`
	esc := func(s, special string) string {
		var b strings.Builder
		for _, r := range s {
			if strings.ContainsRune(special, r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	return esc(esc(v, level), graph)
}
