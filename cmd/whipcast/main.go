// Command whipcast is the gateway: WHIP in, Low-Latency HLS out.
//
//	whipcast [--config FILE] [--http ADDR] [--webrtc-port N] [--public-ip IP]...
//
// With no --config it runs on the embedded default configuration. SIGTERM
// and SIGINT stop it gracefully; SIGHUP rereads http.tls.cert and key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/internal/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stderr, nil))
}

type ipList []string

func (l *ipList) String() string     { return strings.Join(*l, ",") }
func (l *ipList) Set(v string) error { *l = append(*l, v); return nil }

// run is main without the process: it returns the exit code, and calls
// started (when not nil) with the running gateway, for tests.
func run(ctx context.Context, args, environ []string, stderr io.Writer, started func(*gateway.Gateway)) int {
	fs := flag.NewFlagSet("whipcast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file laid over the embedded default (docs/configuration.md)")
	httpAddr := fs.String("http", "", "HTTP listen address (http.addr), e.g. :8080")
	port := fs.Int("webrtc-port", -1, "UDP and ICE-TCP port for WebRTC media (webrtc.port)")
	var publicIPs ipList
	fs.Var(&publicIPs, "public-ip", "IP to advertise in ICE candidates (webrtc.public_ips); repeatable")
	printCfg := fs.Bool("print-default-config", false, "print the embedded default config and exit")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); off when empty")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "whipcast: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *printCfg {
		_, _ = stderr.Write(config.Default)
		return 0
	}

	var (
		cfg *config.Config
		err error
	)
	if *cfgPath != "" {
		cfg, err = config.LoadFile(*cfgPath, environ)
	} else {
		cfg, err = config.Load(nil, environ)
	}
	if err != nil {
		fmt.Fprintf(stderr, "whipcast: %v\n", err)
		return 2
	}
	if *httpAddr != "" {
		cfg.HTTP.Addr = *httpAddr
	}
	if *port >= 0 {
		cfg.WebRTC.Port = *port
	}
	if len(publicIPs) > 0 {
		cfg.WebRTC.PublicIPs = publicIPs
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "whipcast: %v\n", err)
		return 2
	}

	log := newLogger(cfg.Log, stderr)
	setGC(cfg.Runtime, environ, log)
	g, err := gateway.New(cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if *pprofAddr != "" {
		stopPprof, err := servePprof(*pprofAddr, log)
		if err != nil {
			log.Error("start failed", "err", err)
			return 1
		}
		defer stopPprof()
	}
	// Before started: a SIGHUP from then on is a reload, never the
	// default action (the end of the process).
	stopHUP := reloadOnHUP(g, log)
	defer stopHUP()
	if started != nil {
		started(g)
	}
	if err := g.Run(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// reloadOnHUP rereads http.tls.cert and key on each SIGHUP (certbot's
// deploy hook, a cert-manager sidecar) until the returned stop is called.
// SIGHUP never ends the process: without http.tls.cert it is logged and
// ignored.
func reloadOnHUP(g *gateway.Gateway, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-hup:
				// ReloadTLS logs the outcome itself.
				if err := g.ReloadTLS(); errors.Is(err, gateway.ErrNoCertFiles) {
					log.Info("SIGHUP: nothing to reload", "why", err.Error())
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-exited
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
