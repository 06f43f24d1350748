import { isIP } from 'node:net';
import { z } from 'zod';
import { ms, bytes, kbps, cidr, port, type Parsed } from '../fields.js';

/**
 * The WebRTC side: the engine publishers and WHEP viewers connect to (`ingest/`), its ICE addresses and
 * the UDP ports shared out among the workers (`plane/workers.ts`), the bitrate asked of browsers, keyframe
 * requests and the timeouts that close a session (`plane/core.ts`, `publishers/registry.ts`, `viewers/`).
 */
export const webRtcFields = {
  webrtc_engine: z
    .enum(['mediasoup', 'werift'])
    .default('mediasoup')
    .describe(
      'the WebRTC stack publishers connect to: `werift` (TypeScript, in the thread), or `mediasoup`: its C++ ' +
        'worker process (built by the install, see the quick start), one per worker thread, every publisher of a ' +
        'worker on one UDP port of its share; ICE-lite, so a session whose chosen address is outside ' +
        '`webrtc_ice_remote_networks` is closed rather than never answered. Both pass the same engine tests ' +
        '(`test/engines/`); the rest of the suite runs on mediasoup (`GATEWAY_WEBRTC_ENGINE=werift npm test` runs it ' +
        'on werift)',
    ),
  webrtc_mediasoup_rtp_handoff: z
    .enum(['plain', 'direct'])
    .default('plain')
    .describe(
      "with mediasoup, how each publisher's RTP reaches the gateway from the worker: `plain`, plain RTP over " +
        "loopback UDP to one socket of the gateway's (a `PlainTransport`; only the worker's port is heard; it takes " +
        "one more port of the worker's share, bound to 127.0.0.1), or `direct`, as messages on the worker's channel " +
        '(a `DirectTransport`). See the benchmark for what each costs',
    ),
  webrtc_ice_addresses: z
    .array(z.string().refine((v) => v === 'default-route' || isIP(v) !== 0, 'must be an IP address or default-route'))
    .min(1)
    .default(['127.0.0.1', 'default-route'])
    .describe(
      "the only addresses gathered and announced as ICE candidates; `default-route` is this machine's own address " +
        'on its default route (IPv4 when there is an IPv4 default route), which Firefox and Safari pair with: they ' +
        'never pair 127.0.0.1. Name the addresses themselves on an exposed server',
    ),
  webrtc_ice_port_min: port
    .default(40000)
    .describe('lowest UDP port for WebRTC media; each worker gathers on its own equal share (at least 16 ports each)'),
  webrtc_ice_port_max: port.default(49999).describe('highest UDP port for WebRTC media'),
  webrtc_ice_remote_networks: z
    .array(cidr)
    .default([])
    .describe(
      'CIDR blocks ICE may talk to; empty = any unicast address (never link-local, multicast, unspecified, broadcast)',
    ),
  webrtc_ice_allow_mdns: z
    .boolean()
    .default(false)
    .describe('resolve `.local` candidates (multicast DNS); off: ignored'),
  webrtc_connect_timeout_ms: ms(1000, 120_000, 20_000, 'a session not connected (ICE + DTLS) by then is closed'),
  webrtc_viewer_connect_timeout_ms: ms(
    1000,
    120_000,
    5000,
    "a WHEP viewer not connected by then is closed, and its slot (`limit_viewers`, its client's `limit_sessions_per_client`) freed",
  ),
  webrtc_udp_receive_buffer_bytes: bytes(
    65_536,
    256 * 1024 * 1024,
    4 * 1024 * 1024,
    'receive buffer of each media socket; the kernel caps it at `net.core.rmem_max` (the gateway warns at start ' +
      'when that is lower: `sysctl -w net.core.rmem_max=4194304`)',
  ),
  webrtc_video_bitrate_kbps: kbps(100, 50_000, 2500, 'bitrate the browser starts at and does not exceed'),
  webrtc_video_min_bitrate_kbps: kbps(50, 50_000, 300, "the browser's floor"),
  webrtc_keyframe_interval_ms: ms(500, 10_000, 2000, 'keyframe request period (keyframes at most this far apart)'),
  webrtc_simulcast_layer_idle_ms: ms(
    1000,
    3_600_000,
    30_000,
    'a simulcast layer no push has taken for this long is let go (its consumer closed, its keyframe requests ' +
      'ended); the next push of it takes it again',
  ),
  webrtc_media_timeout_ms: ms(
    1000,
    60_000,
    5000,
    'a publisher that sends no media for this long is lost (page closed, network gone)',
  ),
  webrtc_video_codecs: z
    .array(z.enum(['H264', 'VP8', 'VP9', 'AV1']))
    .min(1)
    .default(['H264', 'VP8', 'VP9', 'AV1'])
    .describe(
      'accepted video codecs, most preferred first; AV1 goes as it is to destinations that take it, VP8 and VP9 are transcoded',
    ),
};

/** The UDP port range is not empty. */
export function checkIcePorts(c: Parsed<typeof webRtcFields>, ctx: z.RefinementCtx): void {
  if (c.webrtc_ice_port_max <= c.webrtc_ice_port_min) {
    ctx.addIssue({
      code: 'custom',
      path: ['webrtc_ice_port_max'],
      message: 'must be greater than webrtc_ice_port_min',
    });
  }
}

/** The browser's floor is not above the bitrate it starts at. */
export function checkVideoBitrates(c: Parsed<typeof webRtcFields>, ctx: z.RefinementCtx): void {
  if (c.webrtc_video_min_bitrate_kbps > c.webrtc_video_bitrate_kbps) {
    ctx.addIssue({
      code: 'custom',
      path: ['webrtc_video_min_bitrate_kbps'],
      message: 'must not exceed webrtc_video_bitrate_kbps',
    });
  }
}
