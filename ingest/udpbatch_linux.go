package ingest

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg(2) may return. A publisher
// sends a video frame as a burst of packets (~8 for 10 KiB), so under load
// most calls return several.
const batchSize = 16

// coalesceWait is how long the reader lets datagrams queue once media
// flows. After a read that returned at least coalesceMin datagrams but did
// not fill the batch (so the queue is drained and more is coming), the next
// read waits coalesceWait on a timer instead of on the poller, which would
// wake the reader for nearly every datagram. With 50 publishers that is
// one wake-up a millisecond with ~15 datagrams, instead of several
// thousand a second with one to four: each wake-up of an idle process is
// a thread switch (epoll, futex), the largest cost left in the gateway's
// profile on a 2-core VM. The pion goroutines that take the datagrams on
// get them in bursts too, so the Ps stay busy across their hand-offs
// instead of going idle between packets (docs/BENCHMARKS.md: −10–16 % of
// the gateway's CPU at 50 streams). A datagram waits at most this long
// more; a read that finds nothing after the wait parks on the poller, so
// an idle socket costs nothing.
var coalesceWait = time.Millisecond

// coalesceMin is the smallest batch that counts as media flowing: a lone
// datagram (a STUN check, a quiet audio-only publish) keeps reads prompt.
const coalesceMin = 2

// batchBufSize is the size of each datagram buffer: pion's own receive MTU
// for the mux, so nothing it would have read is cut short here.
const batchBufSize = 8192

// batchConn is the shared media socket as pion's UDP mux reads it. The mux
// reads one datagram per call on one goroutine; a plain read is a
// recvfrom(2) per packet, plus a failed one and a poller wake-up every time
// the queue runs dry. batchConn fills up to batchSize datagrams with one
// recvmmsg(2) and hands them out one per ReadFromAddrPort, so a burst costs
// one system call and one wake-up. It implements ice.AddrPortReaderWriter,
// which the mux prefers over ReadFrom (no address allocation). Writes go
// straight to the socket.
type batchConn struct {
	*net.UDPConn
	rc syscall.RawConn

	mu     sync.Mutex // the mux reads from one goroutine; this keeps other readers safe
	hdrs   [batchSize]mmsghdr
	iovs   [batchSize]unix.Iovec
	names  [batchSize]unix.RawSockaddrAny
	bufs   [batchSize][batchBufSize]byte
	n      int // datagrams in the batch
	lastN  int // datagrams the last read returned (0: it failed)
	next   int // the next one to hand out
	errno  syscall.Errno
	readFn func(fd uintptr) bool // c.recvmmsg, made once: a method value allocates
}

// mmsghdr is struct mmsghdr of recvmmsg(2); Go lays it out as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// newBatchConn wraps c; on failure to reach its descriptor it returns c
// itself (plain reads).
func newBatchConn(c *net.UDPConn) net.PacketConn {
	rc, err := c.SyscallConn()
	if err != nil {
		return c
	}
	b := &batchConn{UDPConn: c, rc: rc}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(batchBufSize)
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
	}
	b.readFn = b.recvmmsg
	return b
}

// recvmmsg is the RawConn.Read callback: false asks the poller to wait.
func (c *batchConn) recvmmsg(fd uintptr) bool {
	for i := range c.hdrs {
		c.hdrs[i].hdr.Namelen = unix.SizeofSockaddrAny
		c.hdrs[i].hdr.Flags = 0
		c.hdrs[i].len = 0
	}
	for {
		// A raw system call: with MSG_DONTWAIT it never blocks, so the P
		// need not be offered to others meanwhile, and entering the
		// scheduler's syscall state would wake sysmon from its idle sleep
		// on every batch (entersyscallWakeSysmon): ~20 % of the gateway's
		// CPU in a 2-core VM, where each thread wake-up costs a context
		// switch (docs/BENCHMARKS.md).
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.hdrs[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			c.n, c.errno = int(r), 0
			c.lastN = c.n
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			c.n, c.errno, c.lastN = 0, e, 0
			return true
		}
	}
}

// ReadFromAddrPort returns the next datagram, reading a new batch when the
// last is used up. Like recvfrom, a datagram longer than b is cut to len(b).
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for c.next < c.n {
			i := c.next
			c.next++
			// A source that is neither IPv4 nor IPv6 cannot come to a UDP
			// socket; were one to, it is skipped rather than failing the mux.
			if ap := sockaddrToAddrPort(&c.names[i]); ap.IsValid() {
				return copy(b, c.bufs[i][:min(int(c.hdrs[i].len), batchBufSize)]), ap, nil
			}
		}
		// While media flows, wait a moment for more to queue before
		// reading again, rather than being woken by the poller for each
		// datagram (see coalesceWait).
		if c.lastN >= coalesceMin && c.lastN < batchSize && coalesceWait > 0 {
			time.Sleep(coalesceWait)
		}
		c.n, c.next = 0, 0
		if err := c.rc.Read(c.readFn); err != nil {
			return 0, netip.AddrPort{}, err
		}
		if c.errno != 0 {
			return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: os.NewSyscallError("recvmmsg", c.errno)}
		}
	}
}

// ReadFrom implements net.PacketConn for readers that do not use
// ReadFromAddrPort.
func (c *batchConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// WriteToAddrPort implements ice.AddrPortReaderWriter.
func (c *batchConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// sockaddrToAddrPort reads an AF_INET or AF_INET6 source address; an IPv4
// peer of the dual-stack socket comes as ::ffff:a.b.c.d, as from
// ReadFromUDPAddrPort (pion unmaps it).
func sockaddrToAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), ntohs(in.Port))
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(in.Addr), ntohs(in.Port))
	}
	return netip.AddrPort{}
}

// ntohs turns a port as the kernel stores it (network order) into a number.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
