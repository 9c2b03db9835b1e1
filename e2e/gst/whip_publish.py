#!/usr/bin/python3
"""A WHIP publisher (RFC 9725) on GStreamer's webrtcbin, for interop tests.

webrtcbin is a WebRTC stack independent of pion: libnice for ICE, GStreamer's
own DTLS/SRTP, x264enc and opusenc for the media. It is what Meetecho's
simple-whip-client wraps. By default it is non-trickle: it waits until ICE
gathering is complete, POSTs the whole offer, applies the 201's answer,
publishes for --seconds, reads webrtcbin's statistics and DELETEs the
resource. With --trickle it POSTs the offer at once, without candidates,
and sends each candidate webrtcbin gathers in a PATCH
(application/trickle-ice-sdpfrag, RFC 8840, with If-Match: the 201's ETag),
then a=end-of-candidates. With --ice-restart-at S it restarts ICE S seconds
into the publish as RFC 9725 section 4.4.1 says: a new offer with new
credentials (webrtcbin's create-offer option ice-restart), its ufrag, pwd
and candidates PATCHed with If-Match: *, the gateway's new credentials and
candidates from the 200's fragment applied as the new answer, and media
going on over the same session. It prints one JSON line of what it did and
exits nonzero on any failure.

Needs /usr/bin/python3 with python3-gi, python3-gst-1.0 and
gir1.2-gst-plugins-bad-1.0 (GstWebRTC), and the plugins of
gstreamer1.0-plugins-{base,good,bad,ugly} and gstreamer1.0-nice.
"""

import argparse
import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import Gst, GstSdp, GstWebRTC  # noqa: E402

PIPELINE = """
webrtcbin name=w bundle-policy=max-bundle
videotestsrc is-live=true pattern=ball
  ! video/x-raw,width={width},height={height},framerate={fps}/1
  ! videoconvert ! queue
  ! x264enc tune=zerolatency key-int-max={gop} speed-preset=ultrafast bitrate={kbps}
  ! video/x-h264,profile=constrained-baseline
  ! rtph264pay name=vpay config-interval=-1 pt=96 aggregate-mode=zero-latency
  ! application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000
  ! w.
audiotestsrc is-live=true wave=sine freq=440
  ! audioconvert ! audioresample ! queue
  ! opusenc bitrate=64000
  ! rtpopuspay pt=111
  ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000
  ! w.
"""


class Failure(Exception):
    """A step that did not work; its message goes into the JSON line."""


class Unsupported(Failure):
    """A step this GStreamer cannot take (said as "unsupported" too)."""


def promise_reply(element, signal, what, timeout, *args):
    """Emits an action signal that takes a promise last, waits for the
    reply and returns it (a Gst.Structure, or None)."""
    done = threading.Event()
    promise = Gst.Promise.new_with_change_func(lambda _p: done.set())
    element.emit(signal, *args, promise)
    if not done.wait(timeout):
        promise.interrupt()
        raise Failure(f"{what}: no answer from webrtcbin within {timeout:.0f} s")
    if promise.wait() != Gst.PromiseResult.REPLIED:
        raise Failure(f"{what}: promise {promise.wait().value_nick}")
    reply = promise.get_reply()
    # webrtcbin refuses e.g. an answer it cannot apply with an error field.
    if reply is not None and reply.has_field("error"):
        raise Failure(f"{what}: {reply.get_value('error').message}")
    return reply


def bus_error(pipeline):
    """The next error on the bus, as text (None when there is none)."""
    msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if msg is None:
        return None
    err, dbg = msg.parse_error()
    return f"{msg.src.get_name()}: {err.message} ({dbg})"


def wait_until(pipeline, what, timeout, ok):
    """Polls ok() until it holds; fails on a pipeline error or the timeout."""
    deadline = time.monotonic() + timeout
    while not ok():
        err = bus_error(pipeline)
        if err:
            raise Failure(f"waiting for {what}: {err}")
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def http(method, url, token, body=None, content_type=None, timeout=15):
    """One request; returns (status, headers, body) for any status."""
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def sdp_attr(sdp, key):
    """The first a=key: value of an SDP text (None when absent)."""
    for line in sdp.splitlines():
        if line.startswith("a=" + key + ":"):
            return line[len(key) + 3:].strip()
    return None


def mids(sdp):
    """The a=mid of each m-line, in order."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            out.append(None)
        elif line.startswith("a=mid:") and out:
            out[-1] = line[len("a=mid:"):].strip()
    return out


def without_candidates(sdp):
    """The offer as a trickling client POSTs it: no candidates yet."""
    keep = [l for l in sdp.split("\r\n") if not l.startswith("a=candidate:") and l != "a=end-of-candidates"]
    return "\r\n".join(keep)


def sdpfrag(ufrag, pwd, mid, candidates, end):
    """An RFC 8840 fragment with candidates of one m-line (by mid)."""
    lines = [f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", "m=audio 9 RTP/AVP 0", f"a=mid:{mid}"]
    lines += ["a=" + c for c in candidates]
    if end:
        lines.append("a=end-of-candidates")
    return ("\r\n".join(lines) + "\r\n").encode()


def trickle(pipeline, webrtc, args, resource, etag, offer_sdp, found, result):
    """Sends the candidates webrtcbin gathers (from found, a queue of
    (m-line index, candidate)) in PATCHes until gathering is complete, then
    a=end-of-candidates. Fails on any answer other than 204."""
    ufrag, pwd, by_index = sdp_attr(offer_sdp, "ice-ufrag"), sdp_attr(offer_sdp, "ice-pwd"), mids(offer_sdp)
    result["trickle_patches"], result["trickled_candidates"] = [], 0

    def patch(body):
        req = urllib.request.Request(resource, data=body, method="PATCH")
        req.add_header("Content-Type", "application/trickle-ice-sdpfrag")
        req.add_header("If-Match", etag)
        if args.token:
            req.add_header("Authorization", "Bearer " + args.token)
        try:
            with urllib.request.urlopen(req, timeout=15) as res:
                status, text = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        result["trickle_patches"].append(status)
        if status != 204:
            raise Failure(f"PATCH {resource}: {status} {text.decode(errors='replace').strip()}")

    deadline = time.monotonic() + args.step_timeout
    while True:
        complete = webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE
        batch = {}
        while True:
            try:
                index, cand = found.get_nowait()
            except queue.Empty:
                break
            batch.setdefault(index, []).append(cand)
        for index, cands in sorted(batch.items()):
            mid = by_index[index] if index < len(by_index) and by_index[index] else str(index)
            patch(sdpfrag(ufrag, pwd, mid, cands, False))
            result["trickled_candidates"] += len(cands)
        if complete and not batch:
            break
        err = bus_error(pipeline)
        if err:
            raise Failure("while trickling: " + err)
        if time.monotonic() > deadline:
            raise Failure(f"ICE gathering not complete after {args.step_timeout:.0f} s")
        time.sleep(0.05)
    patch(sdpfrag(ufrag, pwd, by_index[0] or "0", [], True))


def sdp_attrs(sdp, key):
    """Every a=key: value of an SDP text, in order."""
    return [l[len(key) + 3:].strip() for l in sdp.splitlines() if l.startswith("a=" + key + ":")]


def restarted_answer(answer, frag):
    """The previous answer with the ICE credentials and candidates of the
    gateway's restart fragment in place of its own (RFC 9725 4.4.1: the
    fragment is what changed; the rest of the session stays)."""
    ufrag, pwd = sdp_attr(frag, "ice-ufrag"), sdp_attr(frag, "ice-pwd")
    cands = ["a=candidate:" + c for c in sdp_attrs(frag, "candidate")]
    out = []
    for line in answer.split("\r\n"):
        if line.startswith("a=candidate:") or line == "a=end-of-candidates":
            continue
        if line.startswith("a=ice-ufrag:"):
            line = "a=ice-ufrag:" + ufrag
        elif line.startswith("a=ice-pwd:"):
            line = "a=ice-pwd:" + pwd
        out.append(line)
        if line.startswith("a=mid:"):
            out += cands + ["a=end-of-candidates"]
    return "\r\n".join(out)


def ice_restart(pipeline, webrtc, args, resource, etag, found, result):
    """Restarts ICE on the live session (RFC 9725 section 4.4.1) and
    returns the new ETag. Fails unless the gateway answers 200 with new
    credentials and a new ETag, and the connection is up again after it."""
    r = result["ice_restart"] = {"etag_before": etag}
    local = webrtc.get_property("local-description").sdp.as_text()
    remote = webrtc.get_property("remote-description").sdp.as_text()
    r["local_ufrag_before"], r["remote_ufrag_before"] = sdp_attr(local, "ice-ufrag"), sdp_attr(remote, "ice-ufrag")
    while not found.empty():
        found.get_nowait()
    opts = Gst.Structure.new_from_string("options, ice-restart=(boolean)true")
    reply = promise_reply(webrtc, "create-offer", "create-offer (ice-restart)", args.step_timeout, opts)
    offer = reply.get_value("offer")
    promise_reply(webrtc, "set-local-description", "set-local-description (ice-restart)", args.step_timeout, offer)
    ufrag, pwd = sdp_attr(offer.sdp.as_text(), "ice-ufrag"), sdp_attr(offer.sdp.as_text(), "ice-pwd")
    if ufrag == r["local_ufrag_before"]:
        # GStreamer 1.22 (Debian bookworm) ignores the option: its webrtcbin
        # has no ICE restart.
        raise Unsupported(f"webrtcbin {Gst.version_string()} cannot restart ICE: "
                          f"its ice-restart offer kept the ufrag {ufrag}")
    # The new candidates, gathered with the new credentials.
    wait_until(pipeline, "ICE gathering after the restart", args.step_timeout,
               lambda: webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE
               and not found.empty())
    time.sleep(0.2)  # the last candidates of a complete gathering
    cands = []
    while not found.empty():
        index, cand = found.get_nowait()
        if index == 0:
            cands.append(cand)
    mid = mids(offer.sdp.as_text())[0] or "0"
    req = urllib.request.Request(resource, data=sdpfrag(ufrag, pwd, mid, cands, True), method="PATCH")
    req.add_header("Content-Type", "application/trickle-ice-sdpfrag")
    req.add_header("If-Match", "*")
    if args.token:
        req.add_header("Authorization", "Bearer " + args.token)
    restarted = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=15) as res:
            status, headers, body = res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    frag = body.decode(errors="replace")
    r.update(status=status, content_type=headers.get("Content-Type"), etag_after=headers.get("ETag"),
             candidates_sent=len(cands), local_ufrag_after=ufrag)
    if status != 200:
        raise Failure(f"ICE restart PATCH {resource}: {status} {frag.strip()}")
    if not sdp_attr(frag, "ice-ufrag") or not sdp_attr(frag, "ice-pwd") or not sdp_attrs(frag, "candidate"):
        raise Failure(f"ICE restart: the 200's fragment lacks credentials or candidates: {frag!r}")
    res, answer = GstSdp.SDPMessage.new_from_text(restarted_answer(remote, frag))
    if res != GstSdp.SDPResult.OK:
        raise Failure(f"ICE restart: the rebuilt answer is not SDP: {res}")
    desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, answer)
    promise_reply(webrtc, "set-remote-description", "set-remote-description (ice-restart)", args.step_timeout, desc)
    r["remote_ufrag_after"] = sdp_attr(webrtc.get_property("remote-description").sdp.as_text(), "ice-ufrag")
    r["remote_candidates"] = len(sdp_attrs(frag, "candidate"))
    wait_until(pipeline, "the ICE connection after the restart", args.step_timeout,
               lambda: webrtc.get_property("ice-connection-state") in (GstWebRTC.WebRTCICEConnectionState.CONNECTED,
                                                                      GstWebRTC.WebRTCICEConnectionState.COMPLETED))
    r["connected_after_seconds"] = round(time.monotonic() - restarted, 3)
    return headers.get("ETag") or etag


def outbound_stats(webrtc, timeout):
    """webrtcbin's outbound-rtp statistics per media kind."""
    reply = promise_reply(webrtc, "get-stats", "get-stats", timeout, None)
    out = {}
    if reply is None:
        return out

    def each(_field, value, _data):
        if isinstance(value, Gst.Structure) and value.get_value("type") == GstWebRTC.WebRTCStatsType.OUTBOUND_RTP:
            s = {k: int(value.get_value(k)) for k in ("ssrc", "packets-sent", "bytes-sent", "nack-count", "pli-count")
                 if value.has_field(k)}
            # GStreamer 1.22 labels every bundled stream with the first
            # one's kind and codec; the RTP clock tells them apart.
            src = value.get_value("gst-rtpsource-stats")
            rate = src.get_value("clock-rate") if isinstance(src, Gst.Structure) and src.has_field("clock-rate") else 0
            out["video" if rate == 90000 else "audio" if rate == 48000 else value.get_value("id")] = s
        return True

    reply.foreach(each, None)
    return out


def publish(args, result):
    Gst.init(None)
    pipeline = Gst.parse_launch(PIPELINE.format(width=args.width, height=args.height, fps=args.fps,
                                                gop=args.fps * 2, kbps=args.kbps))
    webrtc = pipeline.get_by_name("w")
    # Encoded frames reaching the payloader once the connection is up (not
    # those webrtcbin queued before it, which it sends when it can).
    frames = {"n": 0, "counting": False}

    def count(_pad, _info):
        if frames["counting"]:
            frames["n"] += 1
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("vpay").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)
    result["pipeline"] = f"{args.width}x{args.height}@{args.fps} x264enc + opusenc, webrtcbin {Gst.version_string()}"
    try:
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise Failure("the pipeline would not start: " + (bus_error(pipeline) or "no error on the bus"))
        # A sender only: the gateway sends no media back.
        for i in range(2):
            t = webrtc.emit("get-transceiver", i)
            if t is None:
                raise Failure(f"webrtcbin has no transceiver {i}")
            t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)

        # Candidates as webrtcbin finds them (on its own thread): sent by
        # the main thread in --trickle mode, ignored otherwise.
        found = queue.Queue()
        webrtc.connect("on-ice-candidate", lambda _w, index, cand: found.put((index, cand)))
        reply = promise_reply(webrtc, "create-offer", "create-offer", args.step_timeout, None)
        offer = reply.get_value("offer")
        promise_reply(webrtc, "set-local-description", "set-local-description", args.step_timeout, offer)
        if args.trickle:
            sdp = without_candidates(webrtc.get_property("local-description").sdp.as_text())
        else:
            wait_until(pipeline, "ICE gathering to complete", args.step_timeout,
                       lambda: webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE)
            sdp = webrtc.get_property("local-description").sdp.as_text()
        result["offer_candidates"] = sdp.count("a=candidate:")

        posted = time.monotonic()
        status, headers, body = http("POST", args.url, args.token, sdp.encode(), "application/sdp")
        result["post_status"] = status
        if status != 201:
            raise Failure(f"POST {args.url}: {status} {body.decode(errors='replace').strip()}")
        location = headers.get("Location")
        if not location:
            raise Failure("201 without Location")
        result["location"] = location
        resource = urllib.parse.urljoin(args.url, location)
        etag = headers.get("ETag")
        res, answer = GstSdp.SDPMessage.new_from_text(body.decode())
        if res != GstSdp.SDPResult.OK:
            raise Failure(f"the answer is not SDP: {res}")
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, answer)
        promise_reply(webrtc, "set-remote-description", "set-remote-description", args.step_timeout, desc)
        err = bus_error(pipeline)
        if err:
            raise Failure("after the answer: " + err)
        if args.trickle:
            if not etag:
                raise Failure("201 without ETag: a trickling client cannot PATCH")
            trickle(pipeline, webrtc, args, resource, etag, sdp, found, result)

        wait_until(pipeline, "the peer connection to connect", args.step_timeout,
                   lambda: webrtc.get_property("connection-state") == GstWebRTC.WebRTCPeerConnectionState.CONNECTED)
        frames["counting"] = True
        result["connected"] = True
        started = time.monotonic()
        deadline = started + args.seconds
        restart_at = started + args.ice_restart_at if args.ice_restart_at > 0 else None
        while time.monotonic() < deadline:
            if restart_at is not None and time.monotonic() >= restart_at:
                restart_at = None
                result["video_frames_before_restart"] = frames["n"]
                etag = ice_restart(pipeline, webrtc, args, resource, etag, found, result)
            err = bus_error(pipeline)
            if err:
                raise Failure("while publishing: " + err)
            state = webrtc.get_property("connection-state")
            if state in (GstWebRTC.WebRTCPeerConnectionState.FAILED, GstWebRTC.WebRTCPeerConnectionState.CLOSED):
                raise Failure(f"while publishing: connection {state.value_nick}")
            time.sleep(0.1)
        result["published_seconds"] = round(time.monotonic() - started, 3)
        result["video_frames_sent"] = frames["n"]
        result["stats"] = outbound_stats(webrtc, args.step_timeout)

        # The pipeline's running time: how much media the live sources
        # have made since PLAYING, on the wall clock (GstSystemClock).
        result["running_seconds"] = round((pipeline.get_clock().get_time() - pipeline.get_base_time()) / Gst.SECOND, 3)
        status, _, body = http("DELETE", resource, args.token)
        result["delete_status"] = status
        result["session_seconds"] = round(time.monotonic() - posted, 3)
        if status not in (200, 204):
            raise Failure(f"DELETE {resource}: {status} {body.decode(errors='replace').strip()}")
    finally:
        pipeline.set_state(Gst.State.NULL)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="the WHIP endpoint, e.g. http://127.0.0.1:8080/whip/live/cam")
    p.add_argument("--token", default="", help="sent as Authorization: Bearer when given")
    p.add_argument("--seconds", type=float, default=10, help="how long to publish once connected")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--kbps", type=int, default=1000)
    p.add_argument("--trickle", action="store_true", help="POST without candidates and PATCH each one (RFC 8840)")
    p.add_argument("--ice-restart-at", type=float, default=0,
                   help="restart ICE this many seconds into the publish (PATCH with If-Match: *); 0 = never")
    p.add_argument("--step-timeout", type=float, default=20, help="bound of each negotiation step")
    args = p.parse_args(argv)
    result = {"ok": False}
    try:
        publish(args, result)
        result["ok"] = True
    except Failure as e:
        result["error"] = str(e)
        result["unsupported"] = isinstance(e, Unsupported)
    except Exception as e:  # anything else is a failure of this client, said as such
        result["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
