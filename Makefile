# whipcast: two commands on a fresh Debian machine.
#   make run   installs what is missing, then runs the gateway on its embedded default config
#   make test  installs what the tests need, then gofmt, go vet, go test -race ./...
#              and every fuzz target for 3 s
# Both are idempotent: a tool already present is not installed again.

GO       ?= go
ARGS     ?=
# Debian packages the cgo build needs: FFmpeg 5.1 libraries for stages/codec (go-astiav).
CODEC_APT := pkg-config fonts-dejavu-core libavcodec-dev libavformat-dev libavfilter-dev libavutil-dev \
             libswresample-dev libswscale-dev libavdevice-dev
# Debian packages the tests need: ffprobe checks every artefact; nginx-rtmp
# is the real RTMP server of the restream tests; Chromium (driven by
# playwright-core from e2e/browser) plays DASH and LL-HLS; coturn is the
# TURN server Chromium relays through (started by the test, never as a
# service: APT_INSTALL's policy-rc.d keeps its postinst from starting it).
# GStreamer's webrtcbin from Debian's python3 is the independent WHIP
# publisher of e2e/gst_test.go: the bindings and GstWebRTC/GstSdp typelibs,
# webrtcbin, DTLS and SRTP (-bad), rtpbin and the RTP payloaders (-good),
# the test sources, videoconvert and opusenc (-base), x264enc (-ugly), and
# libnice's ICE elements.
GST_APT  := python3-gi python3-gst-1.0 gir1.2-gst-plugins-bad-1.0 gstreamer1.0-plugins-base \
            gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice
TEST_APT := ffmpeg nginx libnginx-mod-rtmp chromium coturn $(GST_APT) $(CODEC_APT)
# S3-compatible server for the recording tests (Apache-2.0), installed into .bin/.
VERSITYGW := v1.8.0
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test build build-nocodec deps-go deps-run deps-test fmt-check vet race bench bench-load fuzz fuzz-ci clean ui-vendor

run: deps-go deps-run
	$(GO) run ./cmd/whipcast $(ARGS)

build: deps-go deps-run
	$(GO) build -trimpath -o whipcast ./cmd/whipcast

# A static, cgo-free passthrough gateway: no Opus→AAC, so no RTMP outputs.
build-nocodec: deps-go
	CGO_ENABLED=0 $(GO) build -trimpath -tags nocodec -o whipcast ./cmd/whipcast

test: deps-go deps-test fmt-check vet race fuzz-ci

deps-go:
	@command -v $(GO) >/dev/null || { echo "Go 1.26 or newer is needed: https://go.dev/doc/install" >&2; exit 1; }
	$(GO) mod download

# Installs only the Debian packages that are missing (apt-get update once, when
# needed). A policy-rc.d that denies service starts is put in place for the
# install when none exists, so nginx's postinst never starts it on port 80.
APT_INSTALL = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		rc=""; if [ ! -e /usr/sbin/policy-rc.d ]; then rc=1; \
			printf '\#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; $(SUDO) chmod +x /usr/sbin/policy-rc.d; fi; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		st=$$?; [ -n "$$rc" ] && $(SUDO) rm -f /usr/sbin/policy-rc.d; exit $$st; \
	fi

deps-run:
	@$(call APT_INSTALL,$(CODEC_APT))

deps-test:
	@$(call APT_INSTALL,$(TEST_APT))
	@command -v ffprobe >/dev/null || { echo "ffprobe still missing after install" >&2; exit 1; }
	@command -v nginx >/dev/null || { echo "nginx still missing after install" >&2; exit 1; }
	@command -v turnserver >/dev/null || { echo "turnserver (coturn) still missing after install" >&2; exit 1; }
	@/usr/bin/python3 -c 'import gi; gi.require_version("GstWebRTC", "1.0"); from gi.repository import GstWebRTC' || \
		{ echo "GStreamer's webrtcbin bindings still missing after install" >&2; exit 1; }
	@# node and npm by command: a node from elsewhere (nodesource) brings its own npm.
	@command -v npm >/dev/null || { echo "installing: nodejs npm"; $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	@# npm ci only when node_modules is missing or older than the lock file.
	@if [ ! -d e2e/browser/node_modules ] || [ e2e/browser/package-lock.json -nt e2e/browser/node_modules ]; then \
		echo "npm ci in e2e/browser"; \
		(cd e2e/browser && npm ci --no-audit --no-fund --loglevel=error) && touch e2e/browser/node_modules; \
	fi
	@# The S3-compatible server of the recording tests (~2 min cold), only when missing.
	@[ -x .bin/versitygw ] || command -v versitygw >/dev/null || \
		GOBIN=$(CURDIR)/.bin $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The end-to-end tests run after the package tests, not beside them: they
# play media in real time (Chromium, ffmpeg, nginx-rtmp) and on two cores a
# CPU-bound unit test next to them starves the players, which is not what
# they measure.
race:
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v /e2e$$)
	$(GO) test -race -count=1 -timeout 20m ./e2e/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The side-by-side load run of docs/BENCHMARKS.md ("1–100 streams beside
# MediaMTX"): N WHIP publishers of 720p 2.5 Mb/s with HLS + DASH readers
# against whipcast (default and audio: opus) and, given MEDIAMTX=/path to a
# binary, MediaMTX. NS="1 10 50 100", DURATION=30s, PPROF_N=50, OUT=dir:
# see cmd/whipcast-bench/bench-load.sh. Minutes per N on 2 cores.
bench-load: deps-go deps-run
	@$(call APT_INSTALL,ffmpeg curl)
	bash cmd/whipcast-bench/bench-load.sh

# Runs each fuzz target for FUZZTIME (default 20s): its committed corpus
# (testdata/fuzz/) first, then what the fuzzer makes of it. The packages are
# found by grep, not by `go test -list` (which builds every package's test
# binary); minimisation of a new input is bounded so a short run stays short.
# `make test` runs every target for FUZZTIME_CI after the tests: ~15
# targets, ~50 s of fuzzing plus the instrumented builds.
# FUZZTIME_CI=0 skips it. scripts/fuzz-one.sh runs each and tells a real
# failure (an input written) from Go 1.26's coordinator reporting its own
# deadline as one (golang/go#75804), which failed FuzzDecodeComposite in CI.
FUZZTIME ?= 20s
FUZZTIME_CI ?= 3s
fuzz:
	@for pkg in $$(grep -l '^func Fuzz' $$(find . -name '*_test.go' -not -path './e2e/*') | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg/*_test.go | sed 's/^func //'); do \
			echo "fuzz $$pkg $$f $(FUZZTIME)"; \
			bash scripts/fuzz-one.sh $(GO) $$pkg $$f $(FUZZTIME) || exit 1; \
		done; \
	done

fuzz-ci:
	@[ "$(FUZZTIME_CI)" = 0 ] || $(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_CI)

# Refreshes the web UI's embedded players (web/ui/vendor/) from the npm
# packages pinned in e2e/browser/package.json; commit the result.
ui-vendor: deps-test
	mkdir -p web/ui/vendor
	cp e2e/browser/node_modules/hls.js/dist/hls.min.js web/ui/vendor/hls.min.js
	cp e2e/browser/node_modules/dashjs/dist/modern/umd/dash.all.min.js web/ui/vendor/dash.all.min.js

clean:
	rm -f whipcast
