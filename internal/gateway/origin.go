package gateway

import (
	"path"
	"strings"

	"github.com/whipcast/whipcast/outputs/origin"
	"github.com/whipcast/whipcast/storage"
)

// startOrigin wires the CDN origin publisher (streams[].origin) into the
// transmux service, writing under prefix through the recorder's spool.
func (g *Gateway) startOrigin(sp Spooler, prefix string) error {
	o, err := origin.New(origin.Settings{
		Spool:  sp,
		Prefix: prefix,
		Window: g.cfg.Origin.Window,
		Queue:  g.cfg.Storage.Queue,
		Keep:   g.cfg.Origin.Keep,
		Publish: func(stream string) bool {
			r, ok := g.cfg.Rule(stream)
			return ok && r.Origin
		},
		Logger:  g.log.With("component", "origin"),
		OnEvent: g.originEvent, // api.go
	})
	if err != nil {
		return err
	}
	o.Attach(g.cmaf)
	g.rec.origin = o
	return nil
}

// originMeta gives the origin's objects (under prefix) their Content-Type
// and Cache-Control for a CDN; other objects get the spool's default.
func originMeta(prefix string) func(key string) storage.Meta {
	return func(key string) storage.Meta {
		if strings.HasPrefix(key, prefix+"/") {
			return origin.Meta(key)
		}
		return storage.Meta{ContentType: storage.TypeByKey(key)}
	}
}

func joinKey(a, b string) string { return strings.Trim(path.Join(a, b), "/") }
