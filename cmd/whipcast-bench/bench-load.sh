#!/usr/bin/env bash
# bench-load.sh: the side-by-side load run of docs/BENCHMARKS.md ("1–100
# streams beside MediaMTX"). `make bench-load` runs it from the repository.
#
# It builds whipcast and whipcast-bench, makes the 720p30 2.5 Mb/s fixture
# with ffmpeg, and for each N in $NS starts each gateway afresh (so its peak
# RSS is that run's), runs whipcast-bench against it, stops it, and prints
# the Markdown table of every run at the end.
#
# Environment (all optional):
#   NS="1 10 50 100"   publisher counts
#   DURATION=30s       how long each publisher sends
#   MEDIAMTX=/path     a MediaMTX binary to run beside whipcast (never built here;
#                      docs/BENCHMARKS.md "MediaMTX from its source")
#   GATEWAYS="whipcast whipcast-opus mediamtx"   which gateways, in this order per N
#   PPROF_N=50         take CPU and heap profiles at this N (empty: none)
#   PPROF_SECONDS=10   length of the CPU profile
#   OUT=dir            results (default: a new directory under /tmp)
#   PORT=18080         first of the ports used (HTTP, WebRTC, pprof: PORT..PORT+9)
#   EXTRA="-answer-pli"   more whipcast-bench flags
#   GOGC_OPUS=""       runtime.gogc for the whipcast-opus gateway (empty: the default)
#   COOL=5             seconds of rest between runs
#   AUDIO=file.ogg     the publishers' Opus (default testdata/av.ogg, a stereo tone;
#                      testdata/speech-mono.ogg is what a browser microphone sends)
set -euo pipefail

cd "$(dirname "$0")/../.."
repo=$PWD
NS=${NS:-"1 10 50 100"}
DURATION=${DURATION:-30s}
MEDIAMTX=${MEDIAMTX:-}
PPROF_N=${PPROF_N-50}
PPROF_SECONDS=${PPROF_SECONDS:-10}
PORT=${PORT:-18080}
EXTRA=${EXTRA--answer-pli}
COOL=${COOL:-5}
GOGC_OPUS=${GOGC_OPUS:-}
if [ -z "${GATEWAYS:-}" ]; then
	GATEWAYS="whipcast whipcast-opus"
	[ -n "$MEDIAMTX" ] && GATEWAYS="mediamtx $GATEWAYS"
fi
OUT=${OUT:-$(mktemp -d /tmp/whipcast-bench.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d /tmp/whipcast-bench-work.XXXXXX)
gw_pid=""
cleanup() {
	if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

say() { echo "bench-load: $*" >&2; }

for tool in ffmpeg curl; do
	command -v $tool >/dev/null || { say "$tool is needed"; exit 2; }
done
if [ -n "$MEDIAMTX" ] && [ ! -x "$MEDIAMTX" ]; then
	say "MEDIAMTX=$MEDIAMTX is not an executable"; exit 2
fi

say "building into $work"
go build -o "$work/whipcast" ./cmd/whipcast
go build -o "$work/whipcast-bench" ./cmd/whipcast-bench

# The fixture: 10 s of testsrc2 at 1280x720, 30 fps, constrained baseline,
# one slice per picture, a keyframe every 2 s (60 frames), 2.5 Mb/s (also the
# VBV ceiling), Annex-B. Each publisher sends it in a loop.
video=$work/bench720.h264
say "making $video"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 10 \
	-c:v libx264 -preset veryfast -profile:v baseline -level 3.1 -pix_fmt yuv420p -x264-params slices=1 \
	-g 60 -keyint_min 60 -sc_threshold 0 -b:v 2500k -maxrate 2500k -bufsize 2500k \
	-bsf:v h264_mp4toannexb -f h264 "$video"
audio=${AUDIO:-$repo/testdata/av.ogg} # default: stereo Opus 48 kHz, 20 ms packets

http=$PORT
rtc=$((PORT + 1))
pprof=$((PORT + 2))
mtx_webrtc=$((PORT + 3))
mtx_hls=$((PORT + 4))
mtx_udp=$((PORT + 5))
mtx_pprof=$((PORT + 6))

cat >"$work/opus.yaml" <<YML
log: {level: warn}
audio: {codec: opus}
YML
if [ -n "$GOGC_OPUS" ]; then echo "runtime: {gogc: $GOGC_OPUS}" >>"$work/opus.yaml"; fi
echo "log: {level: warn}" >"$work/default.yaml"

# MediaMTX as docs/BENCHMARKS.md configures it: WHIP in, LL-HLS out, the
# 4 MiB UDP buffer whipcast has by default too.
cat >"$work/mediamtx.yml" <<YML
logLevel: warn
rtsp: no
rtmp: no
srt: no
api: no
pprof: yes
pprofAddress: 127.0.0.1:$mtx_pprof
udpReadBufferSize: 4194304
webrtc: yes
webrtcAddress: 127.0.0.1:$mtx_webrtc
webrtcLocalUDPAddress: 127.0.0.1:$mtx_udp
webrtcLocalTCPAddress: ''
webrtcIPsFromInterfaces: no
webrtcAdditionalHosts: [127.0.0.1]
hls: yes
hlsAddress: 127.0.0.1:$mtx_hls
paths:
  all_others:
YML

# start_gateway NAME N: starts it in its own directory (recordings, spool)
# and waits until it answers HTTP; sets gw_pid, bench_args, pprof_url.
start_gateway() {
	local name=$1 n=$2 dir=$work/run-$1-$2
	mkdir -p "$dir"
	local log=$OUT/$name-$n.log
	case $name in
	whipcast | whipcast-opus)
		local cfg=$work/default.yaml
		[ "$name" = whipcast-opus ] && cfg=$work/opus.yaml
		(cd "$dir" && exec "$work/whipcast" --config "$cfg" --http 127.0.0.1:$http --webrtc-port $rtc \
			--pprof 127.0.0.1:$pprof) 2>"$log" &
		gw_pid=$!
		ready=http://127.0.0.1:$http/healthz
		pprof_url=http://127.0.0.1:$pprof/debug/pprof
		bench_args=(-whip "http://127.0.0.1:$http/whip/{name}" -hls "http://127.0.0.1:$http/hls/{name}/index.m3u8"
			-dash "http://127.0.0.1:$http/dash/{name}/manifest.mpd")
		;;
	mediamtx)
		(cd "$dir" && exec "$MEDIAMTX" "$work/mediamtx.yml") >"$log" 2>&1 &
		gw_pid=$!
		ready=http://127.0.0.1:$mtx_hls/
		pprof_url=http://127.0.0.1:$mtx_pprof/debug/pprof
		bench_args=(-whip "http://127.0.0.1:$mtx_webrtc/{name}/whip" -hls "http://127.0.0.1:$mtx_hls/{name}/index.m3u8")
		;;
	*)
		say "unknown gateway $name (whipcast, whipcast-opus, mediamtx)"; exit 2 ;;
	esac
	for _ in $(seq 100); do
		curl -s -o /dev/null "$ready" && return 0
		kill -0 "$gw_pid" 2>/dev/null || { say "$name exited at start:"; cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	say "$name did not answer $ready"; exit 1
}

stop_gateway() {
	kill "$gw_pid" 2>/dev/null || true
	wait "$gw_pid" 2>/dev/null || true
	gw_pid=""
}

# profile NAME N: CPU and heap profiles once every publisher is sending (the
# publishers' keyframe phases are spread over 2 s, then connect takes up to
# a few seconds at N=100).
profile() {
	local name=$1 n=$2 secs=${DURATION%s}
	[[ $secs =~ ^[0-9]+$ ]] || secs=30
	sleep $((secs / 3))
	curl -s -o "$OUT/cpu-$name-$n.pprof" "$pprof_url/profile?seconds=$PPROF_SECONDS" || say "no CPU profile of $name"
	curl -s -o "$OUT/heap-$name-$n.pprof" "$pprof_url/heap" || say "no heap profile of $name"
}

results=$OUT/results.jsonl
: >"$results"
read -r -a extra <<<"$EXTRA"
for n in $NS; do
	for name in $GATEWAYS; do
		say "$name, N=$n, $DURATION"
		start_gateway "$name" "$n"
		prof=""
		if [ "$n" = "$PPROF_N" ]; then
			profile "$name" "$n" &
			prof=$!
		fi
		"$work/whipcast-bench" -n "$n" -duration "$DURATION" -label "$name" -pid "$gw_pid" \
			-video "$video" -audio "$audio" "${bench_args[@]}" "${extra[@]}" >"$OUT/$name-$n.txt" 2>>"$OUT/$name-$n.log" || true
		[ -n "$prof" ] && wait "$prof"
		head -n 1 "$OUT/$name-$n.txt" | grep '^{' >>"$results" || say "$name N=$n wrote no report (see $OUT/$name-$n.txt)"
		stop_gateway
		sleep "$COOL"
	done
done

"$work/whipcast-bench" table "$results" | tee "$OUT/table.md"
say "results in $OUT (results.jsonl, table.md, per-run .txt and .log, profiles: go tool pprof -top FILE)"
