package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/outputs/origin"
	"github.com/whipcast/whipcast/outputs/recorder"
	"github.com/whipcast/whipcast/storage"
)

// Spooler is what the recorder and the origin write through: the spool,
// or what WrapSpool makes of it.
type Spooler interface {
	recorder.Spool
	origin.Spool
}

// WrapSpool, when set before New, wraps the spool the recorder and the
// origin write through (and nothing else: uploads, drains and the API see
// the spool itself). Tests use it for a disk that stops answering; nil
// means the spool itself.
var WrapSpool func(Spooler) Spooler

// recording is the storage side of the gateway: the store, its spool and
// the recorder, made only when some stream rule records.
type recording struct {
	spool  *storage.Spool
	rec    *recorder.Recorder
	store  storage.Store
	prefix string
	origin *origin.Origin // origin.go; nil when no rule says origin
	grace  time.Duration
}

// newStore makes the configured store.
func newStore(cfg config.Storage) (storage.Store, string, error) {
	if cfg.Type == "s3" {
		st, err := storage.NewS3(context.Background(), storage.S3Settings{
			Bucket: cfg.S3.Bucket, Endpoint: cfg.S3.Endpoint, Region: cfg.S3.Region,
			PathStyle: cfg.S3.PathStyle, AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey,
		})
		return st, cfg.S3.Prefix, err
	}
	st, err := storage.NewLocal(cfg.Path)
	return st, "", err
}

// startRecording wires the recorder into the transmux service, uploads what
// an earlier run left in the spool and finalises its open sessions. It runs
// whether or not a stream rule records: the API starts recordings on demand.
func (g *Gateway) startRecording() error {
	origins := false
	for _, r := range g.cfg.Streams {
		origins = origins || r.Origin
	}
	store, prefix, err := newStore(g.cfg.Storage)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	sp, err := storage.NewSpool(store, storage.SpoolSettings{
		Dir:    g.cfg.Storage.SpoolDir,
		Meta:   originMeta(joinKey(prefix, g.cfg.Origin.Prefix)),
		Logger: g.log.With("component", "spool"),
	})
	if err != nil {
		return fmt.Errorf("storage.spool_dir: %w", err)
	}
	var w Spooler = sp
	if WrapSpool != nil {
		w = WrapSpool(sp)
	}
	rec, err := recorder.New(recorder.Settings{
		Spool:  w,
		Queue:  g.cfg.Storage.Queue,
		Prefix: prefix,
		Record: func(stream string) bool {
			r, ok := g.cfg.Rule(stream)
			return ok && r.Record
		},
		Logger:  g.log.With("component", "recorder"),
		OnEvent: g.recordingEvent, // api.go
	})
	if err != nil {
		sp.Close()
		return fmt.Errorf("storage.spool_dir: %w", err)
	}
	rec.Recover()
	rec.Attach(g.cmaf)
	g.rec = &recording{spool: sp, rec: rec, store: store, prefix: prefix, grace: g.cfg.Storage.ShutdownTimeout}
	if origins {
		if err := g.startOrigin(w, joinKey(prefix, g.cfg.Origin.Prefix)); err != nil {
			sp.Close()
			g.rec = nil
			return err
		}
	}
	return nil
}

// stopRecording finalises open recordings and drains the uploads within
// storage.shutdown_timeout; the transmux service must be closed before, so
// every recording has seen its end. What is not uploaded stays spooled.
func (g *Gateway) stopRecording() {
	if g.rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.rec.grace)
	defer cancel()
	done := make(chan struct{})
	go func() {
		g.rec.rec.Close()
		if g.rec.origin != nil {
			g.rec.origin.Close()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		g.log.Warn("recordings not finalised within storage.shutdown_timeout; they are finalised on the next start")
	}
	if err := g.rec.spool.Drain(ctx); err != nil {
		g.log.Warn("uploads left in the spool for the next start", "err", err)
	}
	g.rec.spool.Close()
	<-done
	g.rec = nil
}

// Recorder returns the recorder (nil once stopped).
func (g *Gateway) Recorder() *recorder.Recorder {
	if g.rec == nil {
		return nil
	}
	return g.rec.rec
}

// Spool returns the upload spool (nil once stopped).
func (g *Gateway) Spool() *storage.Spool {
	if g.rec == nil {
		return nil
	}
	return g.rec.spool
}
