package transmux

import (
	"bytes"
	"errors"
	"testing"
)

// countingWriter records each Write.
type countingWriter struct {
	bytes.Buffer
	writes int
	failAt int // the Write number that fails, 0 for none
}

var errWrite = errors.New("write failed")

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	if c.writes == c.failAt {
		return 0, errWrite
	}
	return c.Buffer.Write(p)
}

func testPart(sizes ...int) (*Part, []byte) {
	p := &Part{Header: []byte("moof+mdat header")}
	want := append([]byte(nil), p.Header...)
	for i, n := range sizes {
		d := bytes.Repeat([]byte{byte('a' + i)}, n)
		p.Payload = append(p.Payload, d)
		want = append(want, d...)
	}
	p.Size = int64(len(want))
	return p, want
}

// A part of many samples reaches an HTTP response in one Write, byte for
// byte the header followed by the samples.
func TestPartWriteToGathers(t *testing.T) {
	p, want := testPart(12000, 9000, 300, 15000, 8000)
	var w countingWriter
	n, err := p.WriteTo(&w)
	if err != nil || n != p.Size {
		t.Fatalf("wrote %d of %d: %v", n, p.Size, err)
	}
	if !bytes.Equal(w.Bytes(), want) {
		t.Fatal("bytes differ")
	}
	if w.writes != 1 {
		t.Fatalf("%d writes, want 1", w.writes)
	}
}

// A segment bigger than the gather buffer goes out in buffer-sized writes,
// and a sample bigger than the buffer is written as it is.
func TestSegmentWriteToChunks(t *testing.T) {
	p1, w1 := testPart(200<<10, 100<<10)
	p2, w2 := testPart(writeChunk+5, 10)
	seg := &Segment{Parts: []*Part{p1, p2}, Size: p1.Size + p2.Size}
	var w countingWriter
	n, err := seg.WriteTo(&w)
	if err != nil || n != seg.Size {
		t.Fatalf("wrote %d of %d: %v", n, seg.Size, err)
	}
	if !bytes.Equal(w.Bytes(), append(w1, w2...)) {
		t.Fatal("bytes differ")
	}
	// header+200K | 100K+header | the big sample | the 10 bytes
	if w.writes != 4 {
		t.Fatalf("%d writes, want 4", w.writes)
	}
}

// A failed Write ends the copy with its error and what was written.
func TestPartWriteToError(t *testing.T) {
	p1, w1 := testPart(200<<10, 100<<10)
	p2, _ := testPart(10)
	seg := &Segment{Parts: []*Part{p1, p2}}
	w := countingWriter{failAt: 2}
	n, err := seg.WriteTo(&w)
	if !errors.Is(err, errWrite) {
		t.Fatalf("err %v, want %v", err, errWrite)
	}
	if n != int64(len(p1.Header)+200<<10) || !bytes.Equal(w.Bytes(), w1[:n]) {
		t.Fatalf("wrote %d bytes", n)
	}
	if w.writes != 2 {
		t.Fatalf("%d writes after the error, want none", w.writes-2)
	}
}
