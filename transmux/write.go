package transmux

import (
	"io"
	"sync"
)

// writeChunk is the size of the buffer parts and segments are gathered into
// before a Write. A part's bytes are a small header and one slice per sample
// (~10 KiB per 720p frame); written one by one they cost an HTTP response a
// write(2), and often two (the server's 4 KiB bufio.Writer flushes a partly
// filled buffer, then passes the rest straight through), per sample. Gathered,
// a whole part or up to writeChunk of a segment goes out in one Write. The
// copy is cheap next to the system calls it saves (the gateway's CPU profile
// had write(2) at ~7 % of a passthrough gateway).
const writeChunk = 256 << 10

// chunkPool holds the gather buffers; one is in use per response being
// written, so their number follows the concurrent readers, not the streams.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, writeChunk)
	return &b
}}

// gatherWriter gathers slices into a pooled buffer and writes it to w when
// full. Slices bigger than the buffer are written directly.
type gatherWriter struct {
	w     io.Writer
	buf   *[]byte
	total int64
	err   error
}

func newGatherWriter(w io.Writer) *gatherWriter {
	return &gatherWriter{w: w, buf: chunkPool.Get().(*[]byte)}
}

func (g *gatherWriter) add(p []byte) {
	if g.err != nil || len(p) == 0 {
		return
	}
	b := *g.buf
	if len(b)+len(p) > cap(b) {
		g.flush()
		if g.err != nil {
			return
		}
		b = *g.buf
	}
	if len(p) > cap(b) {
		n, err := g.w.Write(p)
		g.total += int64(n)
		g.err = err
		return
	}
	*g.buf = append(b, p...)
}

func (g *gatherWriter) flush() {
	b := *g.buf
	if g.err != nil || len(b) == 0 {
		return
	}
	n, err := g.w.Write(b)
	g.total += int64(n)
	g.err = err
	*g.buf = b[:0]
}

// close writes what is buffered and returns the buffer to the pool.
func (g *gatherWriter) close() (int64, error) {
	g.flush()
	*g.buf = (*g.buf)[:0]
	chunkPool.Put(g.buf)
	g.buf = nil
	return g.total, g.err
}

func (p *Part) gather(g *gatherWriter) {
	g.add(p.Header)
	for _, d := range p.Payload {
		g.add(d)
	}
}
