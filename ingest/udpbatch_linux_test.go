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
