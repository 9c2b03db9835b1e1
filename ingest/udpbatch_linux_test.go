package ingest

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

func listenBatch(t testing.TB) (*batchConn, *net.UDPConn) {
	t.Helper()
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	bc, ok := newBatchConn(uc).(*batchConn)
	if !ok {
		t.Fatal("newBatchConn did not wrap the socket")
	}
	t.Cleanup(func() { bc.Close() })
	tx, err := net.DialUDP("udp", nil, uc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	return bc, tx
}

func TestMmsghdrLayout(t *testing.T) {
	// struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; }
	want := unsafe.Sizeof(mmsghdr{}.hdr) + 4
	if a := unsafe.Alignof(mmsghdr{}); want%a != 0 {
		want += a - want%a
	}
	if got := unsafe.Sizeof(mmsghdr{}); got != want {
		t.Fatalf("mmsghdr is %d bytes, C's is %d", got, want)
	}
}

// A burst sent before the read comes back from one recvmmsg, in order, each
// datagram whole and with its sender's address; the next read after the
// batch waits for new datagrams.
func TestBatchConnReadsBurst(t *testing.T) {
	bc, tx := listenBatch(t)
	from := tx.LocalAddr().(*net.UDPAddr).AddrPort()
	const burst = 10
	for i := range burst {
		if _, err := tx.Write(bytes.Repeat([]byte{byte(i)}, 1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // all queued in the socket
	buf := make([]byte, 1500)
	for i := range burst {
		n, ap, err := bc.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && bc.n != burst {
			t.Fatalf("first recvmmsg returned %d datagrams, want all %d queued", bc.n, burst)
		}
		if n != 1000+i || !bytes.Equal(buf[:n], bytes.Repeat([]byte{byte(i)}, n)) {
			t.Fatalf("datagram %d: %d bytes, want %d of %d", i, n, 1000+i, i)
		}
		if netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) != from {
			t.Fatalf("datagram %d from %v, want %v", i, ap, from)
		}
	}
	// ReadFrom (net.PacketConn) sees the next datagram too.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = tx.Write([]byte("later"))
	}()
	n, addr, err := bc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "later" || addr.(*net.UDPAddr).Port != int(from.Port()) {
		t.Fatalf("ReadFrom: %q from %v: %v", buf[:n], addr, err)
	}
}

// Once a read has returned a partial burst (media flowing), the next read
// waits coalesceWait before reading, so datagrams that arrive meanwhile come
// back from one recvmmsg instead of one wake-up each; after a lone datagram
// the reader does not wait.
func TestBatchConnCoalesces(t *testing.T) {
	defer func(d time.Duration) { coalesceWait = d }(coalesceWait)
	coalesceWait = 500 * time.Millisecond // far longer than the sends below take
	bc, tx := listenBatch(t)
	buf := make([]byte, 1500)
	for range 3 {
		_, _ = tx.Write([]byte("burst"))
	}
	time.Sleep(50 * time.Millisecond)
	for range 3 {
		if _, _, err := bc.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
	if bc.lastN != 3 {
		t.Fatalf("the first read returned %d datagrams, want 3", bc.lastN)
	}
	got := make(chan int, 1)
	go func() {
		_, _, _ = bc.ReadFromAddrPort(buf)
		got <- bc.n
	}()
	for range 5 {
		_, _ = tx.Write([]byte("flow"))
		time.Sleep(time.Millisecond)
	}
	if n := <-got; n != 5 {
		t.Fatalf("the read after a partial burst returned %d datagrams, want the 5 sent while it waited", n)
	}
	for range 4 {
		if _, _, err := bc.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
	// A lone datagram: the next read goes back to the poller and returns
	// the next datagram as it comes, well before the wait would end.
	_, _ = tx.Write([]byte("lone"))
	if _, _, err := bc.ReadFromAddrPort(buf); err != nil || bc.lastN != 1 {
		t.Fatalf("lone datagram: batch of %d: %v", bc.lastN, err)
	}
	start := time.Now()
	go func() {
		time.Sleep(10 * time.Millisecond)
		_, _ = tx.Write([]byte("next"))
		_, _ = tx.Write([]byte("next"))
	}()
	if _, _, err := bc.ReadFromAddrPort(buf); err != nil {
		t.Fatal(err)
	}
	if bc.n != 1 && time.Since(start) >= coalesceWait {
		t.Fatalf("the read after a lone datagram waited %v for a batch of %d", time.Since(start), bc.n)
	}
}

// A datagram longer than the reader's buffer is cut to it, as recvfrom does.
func TestBatchConnShortBuffer(t *testing.T) {
	bc, tx := listenBatch(t)
	if _, err := tx.Write(bytes.Repeat([]byte{7}, 1200)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _, err := bc.ReadFromAddrPort(buf)
	if err != nil || n != 100 {
		t.Fatalf("read %d: %v, want 100", n, err)
	}
}

// The read deadline the mux may set still applies, and Close ends a read.
func TestBatchConnDeadlineAndClose(t *testing.T) {
	bc, _ := listenBatch(t)
	_ = bc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 100)
	if _, _, err := bc.ReadFromAddrPort(buf); err == nil {
		t.Fatal("read past the deadline returned no error")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = bc.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := bc.ReadFromAddrPort(buf)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	bc.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("read on a closed socket returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the read")
	}
}

// The per-packet read allocates nothing.
func TestBatchConnReadAllocs(t *testing.T) {
	bc, tx := listenBatch(t)
	buf := make([]byte, 1500)
	pkt := make([]byte, 1200)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := tx.Write(pkt); err != nil {
			t.Fatal(err)
		}
		if _, _, err := bc.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per datagram, want 0", allocs)
	}
}

// BenchmarkUDPRead compares one recvfrom per datagram with batched reads,
// for bursts of 8 datagrams (one 720p frame).
func BenchmarkUDPRead(b *testing.B) {
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			bc, tx := listenBatch(b)
			read := bc.ReadFromAddrPort
			if !batched {
				read = bc.UDPConn.ReadFromUDPAddrPort
			}
			pkt := make([]byte, 1200)
			buf := make([]byte, 1500)
			b.ResetTimer()
			for range b.N {
				for range 8 {
					_, _ = tx.Write(pkt)
				}
				for range 8 {
					if _, _, err := read(buf); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
