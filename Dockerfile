# Multi-stage build, run as non-root.
#   docker build -t whipcast .                    full gateway (cgo: Opus→AAC, RTMP restream)
#   docker build --target static -t whipcast .    static passthrough gateway (no RTMP outputs)
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config \
      libavcodec-dev libavformat-dev libavfilter-dev libavutil-dev libswresample-dev \
      libswscale-dev libavdevice-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /out/whipcast ./cmd/whipcast \
 && CGO_ENABLED=0 go build -trimpath -tags nocodec -ldflags="-s -w" -o /out/whipcast-static ./cmd/whipcast

# The static, cgo-free binary on distroless: WHIP in, HLS/DASH/recording out.
FROM gcr.io/distroless/static-debian12:nonroot AS static
COPY --from=build /out/whipcast-static /usr/local/bin/whipcast
USER nonroot:nonroot
EXPOSE 8080/tcp 8189/udp 8189/tcp
ENTRYPOINT ["/usr/local/bin/whipcast"]

# The default image: Debian 12's FFmpeg 5.1 runtime libraries for the codec stages.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
      libavcodec59 libavformat59 libavfilter8 libavutil57 libswresample4 libswscale6 libavdevice59 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/whipcast --create-home whipcast
COPY --from=build /out/whipcast /usr/local/bin/whipcast
USER whipcast
WORKDIR /var/lib/whipcast
# HTTP (WHIP, HLS, DASH) and WebRTC media: one UDP port plus ICE-TCP on the same number.
EXPOSE 8080/tcp 8189/udp 8189/tcp
ENTRYPOINT ["/usr/local/bin/whipcast"]
