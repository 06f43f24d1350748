#!/usr/bin/python3
"""A WebRTC client that is not a browser: GStreamer's webrtcbin (Debian's GStreamer 1.22, which
has no whipsink), with just enough WHIP and WHEP around it for the tests.

  gst-webrtc.py publish URL   H.264 (x264, 1280x720 at 30 fps) and Opus test signals, sent only
  gst-webrtc.py view URL      receives H.264 and Opus, decodes them and counts what it decoded
  gst-webrtc.py offer publish|view
                              prints the offer it would send, and exits

It posts its offer (with the candidates gathered) to URL, sets the answer, and prints one JSON
object a line on stdout: {"event": "offer", "sdp": ...}, {"event": "answer", "status": 201,
"location": ..., "sdp": ...}, {"event":
"connected"}, and once a second {"event": "counts", "video": decoded frames, "audio": decoded
buffers, "width": ..., "height": ...}. SIGTERM or SIGINT sends the DELETE to its resource, then it
exits. Any failure is printed as {"event": "error", "message": ...} and ends it with status 1.
"""
import json
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

PUBLISH = (
    "webrtcbin name=webrtc bundle-policy=max-bundle "
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 ! videoconvert ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=2000 ! video/x-h264,profile=constrained-baseline ! "
    "rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
    "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 ! webrtc. "
    "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! opusenc ! rtpopuspay ! "
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! webrtc. "
)
VIEW_CAPS = {
    "video": "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1,profile-level-id=(string)42e01f",
    "audio": "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000",
}


def say(**fields):
    print(json.dumps(fields), flush=True)


class Client:
    def __init__(self, role, url, offer_only):
        self.role = role
        self.url = url
        self.offer_only = offer_only
        self.location = None
        self.counts = {"video": 0, "audio": 0, "width": 0, "height": 0}
        self.loop = GLib.MainLoop()
        if role == "publish":
            self.pipeline = Gst.parse_launch(PUBLISH)
            self.webrtc = self.pipeline.get_by_name("webrtc")
        else:
            self.pipeline = Gst.Pipeline.new("view")
            self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
            self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
            self.pipeline.add(self.webrtc)
            for kind in ("audio", "video"):
                self.webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, Gst.Caps.from_string(VIEW_CAPS[kind]))
            self.webrtc.connect("pad-added", self.on_pad)
        # Its ICE runs on loopback alone, as the gateway of a test announces (libnice leaves
        # loopback out unless told): no packet of it leaves 127.0.0.1. No ICE over TCP.
        self.agent = self.webrtc.get_property("ice-agent")
        self.agent.emit("add-local-ip-address", "127.0.0.1")
        self.agent.set_property("ice-tcp", False)
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::connection-state", self.on_connection)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", lambda _bus, message: self.fail(message.parse_error()[0].message))
        self.offered = False

    def run(self):
        if self.role == "publish":
            self.pipeline.set_state(Gst.State.PLAYING)
            for i in range(2):
                transceiver = self.webrtc.emit("get-transceiver", i)
                if transceiver is not None:
                    transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        else:
            self.pipeline.set_state(Gst.State.PLAYING)
        if not self.offer_only:
            GLib.timeout_add(1000, self.report)
        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.stop)
        self.loop.run()

    def on_negotiation_needed(self, element):
        promise = Gst.Promise.new_with_change_func(self.on_offer, element, None)
        element.emit("create-offer", None, promise)

    def on_offer(self, promise, element, _data):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
        if offer is None:
            # Asked before its pads had caps: it asks again once they have.
            return
        element.emit("set-local-description", offer, Gst.Promise.new())
        # The offer goes with the candidates gathered, as WHIP clients send it; at most 3 s of waiting.
        GLib.timeout_add(3000, self.send_offer)

    def on_gathering(self, element, _spec):
        if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(self.send_offer)

    def send_offer(self):
        if self.offered:
            return False
        self.offered = True
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        if self.offer_only:
            sys.stdout.write(sdp)
            sys.stdout.flush()
            self.loop.quit()
            return False
        say(event="offer", sdp=sdp)
        request = urllib.request.Request(self.url, data=sdp.encode(), method="POST", headers={"content-type": "application/sdp"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, answer = response.status, response.read().decode()
                self.location = urllib.parse.urljoin(self.url, response.headers.get("location"))
        except urllib.error.HTTPError as error:
            say(event="answer", status=error.code, body=error.read().decode())
            self.fail(f"the offer was answered {error.code}")
            return False
        say(event="answer", status=status, location=self.location, sdp=answer)
        _, message = GstSdp.SDPMessage.new_from_text(answer)
        description = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self.webrtc.emit("set-remote-description", description, Gst.Promise.new())
        return False

    def on_connection(self, element, _spec):
        state = element.get_property("connection-state")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            say(event="connected")
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            self.fail("the peer connection failed")

    def on_pad(self, _element, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        kind = pad.get_current_caps().get_structure(0).get_string("media")
        chain = "rtph264depay ! h264parse ! avdec_h264 ! videoconvert" if kind == "video" else "rtpopusdepay ! opusdec ! audioconvert"
        branch = Gst.parse_bin_from_description(f"queue ! {chain} ! fakesink name=sink signal-handoffs=true sync=false", True)
        self.pipeline.add(branch)
        branch.sync_state_with_parent()
        pad.link(branch.get_static_pad("sink"))
        branch.get_by_name("sink").connect("handoff", self.on_decoded, kind)

    def on_decoded(self, _sink, _buffer, pad, kind):
        self.counts[kind] += 1
        if kind == "video" and not self.counts["width"]:
            structure = pad.get_current_caps().get_structure(0)
            self.counts["width"] = structure.get_value("width")
            self.counts["height"] = structure.get_value("height")

    def report(self):
        say(event="counts", **self.counts)
        return True

    def stop(self):
        if self.location:
            try:
                urllib.request.urlopen(urllib.request.Request(self.location, method="DELETE"), timeout=5).close()
            except (urllib.error.URLError, OSError):
                pass
        self.pipeline.set_state(Gst.State.NULL)
        self.loop.quit()
        return False

    def fail(self, message):
        say(event="error", message=message)
        self.pipeline.set_state(Gst.State.NULL)
        self.loop.quit()
        sys.exit(1)


def main():
    Gst.init(None)
    if len(sys.argv) != 3 or sys.argv[1] not in ("publish", "view", "offer"):
        sys.exit(__doc__)
    if sys.argv[1] == "offer":
        Client(sys.argv[2], None, True).run()
    else:
        Client(sys.argv[1], sys.argv[2], False).run()


if __name__ == "__main__":
    main()
