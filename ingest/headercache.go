package ingest

import (
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// headerCache is the innermost interceptor of a publisher's media streams.
// pion reads RTP with no Attributes, so its receiver-report and TWCC
// interceptors each make an Attributes map and parse the RTP header into a
// new rtp.Header for every packet (a fifth of a passthrough gateway's
// allocated bytes). headerCache gives each stream one map and one header,
// parsed once per packet, which both then find (Attributes.GetRTPHeader
// returns what is cached).
//
// The map is reused by the next read, so it is only for streams whose reads
// are consumed before the next one: the H.264 and Opus tracks, read by the
// session's one reader goroutine. RTX repair streams are left alone: pion
// reads them on a goroutine of its own and queues packets with their
// Attributes.
type headerCache struct{ interceptor.NoOp }

type headerCacheFactory struct{}

func (headerCacheFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &headerCache{}, nil
}

// rtpHeaderKey is the key under which pion caches a parsed header (an
// unexported value of package interceptor): found by asking it to cache one.
// nil (pion changed) turns headerCache off.
var rtpHeaderKey = func() any {
	a := interceptor.Attributes{}
	if _, err := a.GetRTPHeader([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}); err != nil || len(a) != 1 {
		return nil
	}
	for k := range a {
		return k
	}
	return nil
}()

func (*headerCache) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if rtpHeaderKey == nil || !(strings.EqualFold(info.MimeType, webrtc.MimeTypeH264) || strings.EqualFold(info.MimeType, webrtc.MimeTypeOpus)) {
		return r
	}
	var hdr rtp.Header
	attrs := interceptor.Attributes{}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil || a != nil {
			return n, a, err
		}
		clear(attrs)
		if _, err := hdr.Unmarshal(b[:n]); err == nil {
			attrs[rtpHeaderKey] = &hdr
		}
		return n, attrs, nil
	})
}
