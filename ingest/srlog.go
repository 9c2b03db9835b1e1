package ingest

import (
	"context"
	"log/slog"
	"time"
)

const (
	// srWarnAfter is how many Sender Reports of a track must be rejected
	// before the log says so: one SR delayed on a busy machine or path is
	// rejected once and costs nothing (the timeline follows the RTP clock
	// meanwhile); a lying clock is rejected every time.
	srWarnAfter = 3
	// srWarnEvery is how often, at most, the warning is repeated with the
	// counts while a track's SRs keep being rejected: a clock that lies
	// does so in every SR, every few seconds, for the whole publish.
	srWarnEvery = 10 * time.Minute
)

// srLog rolls up what one track's rejected Sender Reports say in the log:
// each rejection at Debug; a Warn once srWarnAfter have been rejected, then
// at most one per srWarnEvery with the counts, while rejections continue;
// an Info summary at the end of a publish that had any. It is owned by the
// track's RTCP reader goroutine.
type srLog struct {
	log   *slog.Logger
	attrs []any // session and track

	warned   bool
	lastWarn time.Time
	warnedAt uint64 // rejected count at the last Warn
	accepted uint64
	rejected uint64
}

func newSRLog(log *slog.Logger, attrs ...any) *srLog {
	return &srLog{log: log, attrs: attrs}
}

// observe takes the track's SR counts after one SR arrived at now (ntp and
// rtp are that SR's, for the log).
func (l *srLog) observe(now time.Time, accepted, rejected uint64, ntp time.Time, rtp uint32) {
	l.accepted = accepted
	if rejected == l.rejected {
		return
	}
	l.rejected = rejected
	l.log.Debug("ingest: Sender Report disagrees with the RTP clock or arrival; ignored",
		l.with("ntp", ntp, "rtp", rtp, "rejected", rejected, "accepted", accepted)...)
	switch {
	case !l.warned && rejected >= srWarnAfter:
		l.warned = true
	case l.warned && now.Sub(l.lastWarn) >= srWarnEvery:
	default:
		return
	}
	msg := "ingest: Sender Reports disagree with the RTP clock or arrival; following the RTP clock"
	if l.warnedAt > 0 {
		msg = "ingest: Sender Reports still disagree with the RTP clock or arrival"
	}
	l.log.Warn(msg, l.with("rejected", rejected, "accepted", accepted, "rejected_since_last", rejected-l.warnedAt)...)
	l.lastWarn, l.warnedAt = now, rejected
}

// done logs the track's totals when any SR was rejected: at Info after a
// warning, at Debug for a few stray rejections.
func (l *srLog) done() {
	if l.rejected == 0 {
		return
	}
	level := slog.LevelDebug
	if l.warned {
		level = slog.LevelInfo
	}
	l.log.Log(context.Background(), level, "ingest: Sender Reports at the end of the publish",
		l.with("rejected", l.rejected, "accepted", l.accepted)...)
}

// with is the track's attributes followed by kv, in a new slice.
func (l *srLog) with(kv ...any) []any {
	return append(l.attrs[:len(l.attrs):len(l.attrs)], kv...)
}
