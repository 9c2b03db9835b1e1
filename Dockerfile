# Multi-stage build: a static, cgo-free binary on a distroless base, run as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags nocodec: the static image is the passthrough gateway (no Opus→AAC, so no RTMP outputs).
RUN CGO_ENABLED=0 go build -trimpath -tags nocodec -ldflags="-s -w" -o /out/whipcast ./cmd/whipcast

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/whipcast /usr/local/bin/whipcast
USER nonroot:nonroot
# HTTP (WHIP, HLS) and WebRTC media: one UDP port plus ICE-TCP on the same number.
EXPOSE 8080/tcp 8189/udp 8189/tcp
ENTRYPOINT ["/usr/local/bin/whipcast"]
