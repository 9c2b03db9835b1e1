//go:build !linux

package ingest

import "net"

// newBatchConn returns c: batched reads (recvmmsg) are Linux-only, elsewhere
// pion's mux reads the socket one datagram at a time.
func newBatchConn(c *net.UDPConn) net.PacketConn { return c }
