import { isIP } from 'node:net';
import { z } from 'zod';
import { LIFECYCLE_EVENTS } from '../core/lifecycle-events.js';
import {
  accessFields,
  cidr,
  hostPattern,
  ipAddress,
  keyId,
  octalMode,
  oneSecret,
  port,
  secretSource,
} from './fields.js';

/**
 * Every configuration key, with its default and its description (`.describe()`), from which the
 * README's configuration table is made (`npm run config-reference`; a test fails when it is out of
 * date). `config/gateway.yml` documents each one too; keep the two in step. Names follow Web Call
 * Server's properties where it has one.
 */
export const configSchema = z
  .strictObject({
    http_host: z.string().min(1).default('127.0.0.1').describe('HTTP listen address (REST, WHIP, SDK, publish page)'),
    http_port: z.number().int().min(0).max(65535).default(8080).describe('HTTP port'),
    http_allowed_hosts: z
      .array(z.string().regex(/^[A-Za-z0-9.*:[\]-]{1,253}$/, 'must be a host name, "*.example.com" or an address'))
      .default([])
      .describe(
        'names the gateway answers to (`Host`), `*.example.com` patterns; empty: loopback names when on loopback, else any',
      ),
    http_allowed_origins: z
      .array(
        z
          .string()
          .regex(/^(\*|https?:\/\/[A-Za-z0-9.*:[\]-]+)$/, 'must be an origin such as https://app.example.com, or "*"'),
      )
      .default([])
      .describe(
        'page origins that may use the REST API and the WebSocket (`"*"`: any); empty: the gateway\'s own and localhost pages',
      ),
    http_request_timeout_ms: z
      .number()
      .int()
      .min(1000)
      .max(600000)
      .default(30000)
      .describe('a request must arrive whole within this (ms)'),
    http_headers_timeout_ms: z
      .number()
      .int()
      .min(1000)
      .max(120000)
      .default(10000)
      .describe("a request's headers must arrive within this (ms)"),
    https_cert_file: z.string().default('').describe('PEM certificate chain: HTTPS and WSS (reloaded on SIGHUP)'),
    https_key_file: z.string().default('').describe('PEM private key of `https_cert_file` (reloaded on SIGHUP)'),
    https_port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(0)
      .describe('`0`: HTTPS replaces HTTP on `http_port`; else HTTPS on this port beside HTTP'),
    trust_proxy: z
      .union([z.boolean(), z.array(cidr)])
      .default(false)
      .describe("`true` or the proxies' CIDR blocks: client addresses from `X-Forwarded-For`"),

    ...accessFields,

    webhooks: z
      .array(
        z
          .strictObject({
            id: keyId,
            url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL'),
            /** Empty: every event. */
            events: z.array(z.enum(LIFECYCLE_EVENTS)).default([]),
            timeout_ms: z.number().int().min(100).max(60000).default(5000),
            max_attempts: z.number().int().min(1).max(100).default(8),
            queue_limit: z.number().int().min(1).max(100000).default(1000),
            ...secretSource,
          })
          .superRefine(oneSecret),
      )
      .default([])
      .describe(
        'endpoints told of stream and push events: `{id, url, secret | secret_env | secret_file, events, timeout_ms, ' +
          'max_attempts, queue_limit}` (see [Webhooks](#webhooks))',
      ),

    limit_publishers: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(100)
      .describe('publishers at once, all workers together (`503` beyond)'),
    limit_transponders: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(200)
      .describe('pushes at once, all workers together (`503` beyond)'),
    limit_transponders_per_stream: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(10)
      .describe('pushes of one stream (`429` beyond)'),
    limit_viewers: z
      .number()
      .int()
      .min(0)
      .max(100000)
      .default(50)
      .describe('WHEP viewers at once, all workers together (`503` beyond; 0: none)'),
    limit_viewers_per_stream: z
      .number()
      .int()
      .min(1)
      .max(10000)
      .default(10)
      .describe('WHEP viewers of one stream (`429` beyond)'),
    limit_viewers_per_client: z
      .number()
      .int()
      .min(0)
      .max(10000)
      .default(0)
      .describe(
        'WHEP viewers of one stream from one client address (`429` beyond), at most limit_viewers_per_stream; 0: half of it, rounded up',
      ),
    limit_mixers: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(4)
      .describe('mixers at once in each worker (`503` beyond; 0: none); each takes about half a core'),
    mixer_auto_start: z
      .boolean()
      .default(false)
      .describe(
        'a stream named `user1#room1` publishing joins the mixer `mixer://room1`, started for it (Web Call ' +
          "Server's); `user1#room1#desktop`, a screen, is placed large",
      ),
    mixer_idle_timeout_ms: z
      .number()
      .int()
      .min(0)
      .max(3600000)
      .default(10000)
      .describe('a mixer started by mixer_auto_start ends once it has had no input this long'),
    limit_sessions_per_client: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(20)
      .describe('WHIP sessions and SDK WebSockets at once from one client address (`429` beyond)'),
    limit_signaling_sessions: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(1000)
      .describe('SDK WebSockets open at once from all clients (`503` beyond)'),
    signaling_idle_timeout_ms: z
      .number()
      .int()
      .min(1000)
      .max(3600000)
      .default(30000)
      .describe(
        'an SDK WebSocket that has published nothing by then is closed (code 4408; the SDK connects again quietly)',
      ),
    limit_console_streams_per_client: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(4)
      .describe('operator console event streams per client address (`429` beyond)'),
    limit_console_streams: z
      .number()
      .int()
      .min(1)
      .max(10000)
      .default(32)
      .describe('operator console event streams in total (`503` beyond)'),
    limit_checks: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(4)
      .describe(
        "destination checks (`push/check`, the SDK's) made at once, all callers together; an SRT check runs an ffmpeg",
      ),
    limit_checks_queue: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(8)
      .describe('destination checks waiting for their turn (`503` beyond)'),
    limit_checks_per_client: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(2)
      .describe('destination checks of one client address under way or waiting (`429` beyond)'),
    limit_snapshot_decoders: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(2)
      .describe('snapshots decoded at once (one ffmpeg each)'),
    limit_snapshot_queue: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(16)
      .describe('snapshot requests waiting for a decoder (`503` beyond)'),

    workers: z
      .union([z.literal('auto'), z.number().int().min(0).max(64)])
      .default('auto')
      .describe(
        'worker threads that run the streams, one stream (its publisher and pushes) in one worker: `auto` is one per ' +
          'core; `0` runs them in the main thread beside the HTTP server',
      ),

    overload_event_loop_delay_ms: z
      .number()
      .int()
      .min(0)
      .max(10000)
      .default(150)
      .describe(
        'each worker measures its own event loop: a new publish (WHIP, SDK) goes to a worker that is not past its ' +
          "limits, and gets `503` with `Retry-After: 3` when none is; a push (`/push/startup`, auto-start, the SDK's " +
          "`rtmpUrl`) gets it when its stream's worker is past them. Past: the event loop ran this late (p99 over each " +
          'second, beyond its 50 ms sampling) three seconds in a row (load that lasts, not a moment), and for 3 s ' +
          'after; what runs goes on; `0` = off',
      ),
    overload_event_loop_utilization: z
      .number()
      .min(0)
      .max(1)
      .default(0.9)
      .describe('the same, for the share of time the event loop is busy (0..1)'),
    shed_min_pushes: z
      .number()
      .int()
      .min(1)
      .max(10000)
      .default(1)
      .describe(
        'on a machine out of CPU, pushes are shed (ended until the load passes) one at a time while it helps, but never ' +
          'below this many running',
      ),
    overload_machine_cpu_percent: z
      .number()
      .min(0)
      .max(100)
      .default(90)
      .describe(
        "the same, for the CPU in use: the container's share of its quota when its cgroup sets one (v2 `cpu.max`, v1 " +
          "`cpu.cfs_quota_us`), else the whole machine's (% of all cores, other programs included). The gateway's own " +
          'event loops stay quick long after ffmpeg, its media workers and anything beside it have taken the machine, ' +
          'when every stream loses frames; `0` = off',
      ),

    destination_allow_loopback: z.boolean().default(false).describe('allow destinations on this machine'),
    destination_allow_private: z.boolean().default(false).describe('allow destinations on private networks'),
    destination_allowed_hosts: z
      .array(hostPattern)
      .default([])
      .describe('host patterns, addresses, CIDR blocks: only these destinations (empty: any the other rules allow)'),
    destination_denied_hosts: z
      .array(hostPattern)
      .default([])
      .describe('host patterns, addresses, CIDR blocks: never these destinations'),
    destination_allowed_ports: z.array(port).default([]).describe('only these destination ports (empty: any)'),
    log_level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe("`debug` adds ffmpeg's output (ffmpeg never sees the destination)"),
    log_format: z
      .enum(['auto', 'json', 'pretty'])
      .default('auto')
      .describe(
        '`auto`: one readable line per event when stdout is a terminal, JSON lines otherwise; or `json`, `pretty`. ' +
          'Every line about a push carries its `stream`, `mediaSessionId` and `destination` (redacted)',
      ),

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
      .describe(
        'lowest UDP port for WebRTC media; each worker gathers on its own equal share (at least 16 ports each)',
      ),
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
    webrtc_connect_timeout_ms: z
      .number()
      .int()
      .min(1000)
      .max(120000)
      .default(20000)
      .describe('a session not connected (ICE + DTLS) by then is closed'),
    webrtc_viewer_connect_timeout_ms: z
      .number()
      .int()
      .min(1000)
      .max(120000)
      .default(5000)
      .describe(
        "a WHEP viewer not connected by then is closed, and its slot (`limit_viewers`, its client's `limit_sessions_per_client`) freed",
      ),
    webrtc_udp_receive_buffer_bytes: z
      .number()
      .int()
      .min(65536)
      .max(256 * 1024 * 1024)
      .default(4 * 1024 * 1024)
      .describe(
        'receive buffer of each media socket; the kernel caps it at `net.core.rmem_max` (the gateway warns at start ' +
          'when that is lower: `sysctl -w net.core.rmem_max=4194304`)',
      ),
    webrtc_video_bitrate_kbps: z
      .number()
      .int()
      .min(100)
      .max(50000)
      .default(2500)
      .describe('bitrate the browser starts at and does not exceed'),
    webrtc_video_min_bitrate_kbps: z.number().int().min(50).max(50000).default(300).describe("the browser's floor"),
    webrtc_keyframe_interval_ms: z
      .number()
      .int()
      .min(500)
      .max(10000)
      .default(2000)
      .describe('keyframe request period (keyframes at most this far apart)'),
    webrtc_simulcast_layer_idle_ms: z
      .number()
      .int()
      .min(1000)
      .max(3_600_000)
      .default(30_000)
      .describe(
        'a simulcast layer no push has taken for this long is let go (its consumer closed, its keyframe requests ' +
          'ended); the next push of it takes it again',
      ),
    webrtc_media_timeout_ms: z
      .number()
      .int()
      .min(1000)
      .max(60000)
      .default(5000)
      .describe('a publisher that sends no media for this long is lost (page closed, network gone)'),
    webrtc_video_codecs: z
      .array(z.enum(['H264', 'VP8', 'VP9']))
      .min(1)
      .default(['H264', 'VP8', 'VP9'])
      .describe('accepted video codecs, most preferred first'),

    rtmp_transponder_stream_name_prefix: z
      .string()
      .regex(/^[\w.-]*$/, 'may hold letters, digits, _ . - only')
      .default('rtmp_')
      .describe('prefix of the RTMP stream name (may be empty)'),
    rtmp_transponder_full_url: z.boolean().default(false).describe('last path segment of `rtmpUrl` is the stream name'),
    rtmp_flash_ver_subscriber: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII')
      .default('FMLE/3.0 (compatible; FMSc/1.0)')
      .describe('flashVer sent in the RTMP connect (request: `rtmpFlashVersion`)'),
    rtmp_publisher_ip: z
      .union([z.literal(''), ipAddress])
      .default('')
      .describe('local address of every outbound RTMP connection (`""`: the system chooses)'),
    rtmps_ca_file: z.string().default('').describe('PEM file of extra CAs trusted for RTMPS, besides the system store'),
    rtmp_transponder_send_metadata: z
      .boolean()
      .default(true)
      .describe('send onMetaData (width, height, frame rate, codecs) first'),
    rtmp_push_restore: z
      .boolean()
      .default(true)
      .describe('reconnect a dropped destination (state `reconnecting`); `false`: a drop fails the push'),
    rtmp_push_restore_attempts: z
      .number()
      .int()
      .min(0)
      .max(100000)
      .default(0)
      .describe('attempts per outage before failing; `0` = unlimited'),
    rtmp_push_restore_interval_ms: z
      .number()
      .int()
      .min(100)
      .max(600000)
      .default(1000)
      .describe(
        'wait before the first attempt; later ones grow ×1.5, to 2 s, each lengthened by up to 25 % (jitter); a ' +
          'refusal other than "already publishing" is tried once more, then fails',
      ),
    rtmp_push_stall_timeout_ms: z
      .number()
      .int()
      .min(1000)
      .max(60000)
      .default(5000)
      .describe('no acknowledgement for this long, with output waiting, is a drop (cut network, stopped server)'),
    rtmp_push_max_lag_ms: z
      .union([z.literal(0), z.number().int().min(500).max(60000)])
      .default(3000)
      .describe(
        'a destination lagging more than this gets media dropped up to a keyframe (counted in `framesDropped`); `0`: never',
      ),
    rtmp_push_publisher_grace_ms: z
      .number()
      .int()
      .min(0)
      .max(3600000)
      .default(30000)
      .describe(
        'a publisher that goes away (page closed, network gone) leaves its pushes in `standby`, sending the last ' +
          'picture and silence, live again when the stream is published again; they end after this long; `0` = at once',
      ),
    rtmp_out_buffer_enabled: z
      .boolean()
      .default(false)
      .describe("output buffering: hold media, then send it paced by its timestamps (smooths the publisher's jitter)"),
    rtmp_out_buffer_start_size: z
      .number()
      .int()
      .min(1)
      .max(30000)
      .default(300)
      .describe('media held before sending starts, and again after the buffer ran dry (ms)'),
    rtmp_out_buffer_initial_size: z
      .number()
      .int()
      .min(1)
      .max(30000)
      .default(2000)
      .describe('the most media ever held, so the most delay added (ms); beyond it, what is over is sent'),
    rtmp_out_buffer_polling_time: z
      .number()
      .int()
      .min(5)
      .max(1000)
      .default(100)
      .describe('how often due media is sent (ms)'),
    rtmp_out_buffer_max_bufferings_allowed: z
      .number()
      .int()
      .min(-1)
      .max(1000000)
      .default(-1)
      .describe('times the buffer may run dry and fill again, then media passes straight on; `-1` = no limit'),
    rtmp_push_auto_start: z
      .boolean()
      .default(false)
      .describe('republish every published stream to `rtmp_push_auto_start_url` (a debugging aid)'),
    rtmp_push_auto_start_url: z
      .union([z.literal(''), z.string().regex(/^rtmps?:\/\/\S+$/i, 'must be an rtmp:// or rtmps:// URL')])
      .default('')
      .describe('destination of auto-started pushes, named by the rules above'),

    ffmpeg_path: z.string().min(1).default('ffmpeg').describe('ffmpeg binary'),
    ffmpeg_stop_timeout_ms: z
      .number()
      .int()
      .min(100)
      .max(60000)
      .default(2000)
      .describe('wait per stop step (`q`, SIGINT, SIGKILL)'),
    ffmpeg_start_timeout_ms: z
      .number()
      .int()
      .min(1000)
      .max(60000)
      .default(10000)
      .describe('a push without a keyframe from its publisher, or without output from ffmpeg, after this long fails'),
    transcoding_enabled: z
      .boolean()
      .default(true)
      .describe(
        'off: a startup that needs transcoding (VP8/VP9 source, height, fps, keyFrameInterval, videoBitrate, overlays) answers 400',
      ),
    transcoding_keep_aspect_ratio: z
      .boolean()
      .default(true)
      .describe('a requested height keeps the aspect (even width); off: width and height are both applied'),
    transcoding_video_bitrate_kbps: z
      .number()
      .int()
      .min(100)
      .max(50000)
      .default(2500)
      .describe('bitrate of transcoded video'),
    transcoding_preset: z
      .enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium'])
      .default('superfast')
      .describe('libx264 preset (superfast: a quarter less CPU than veryfast, SSIM 0.989 against 0.992; DESIGN.md)'),
    audio_bitrate_kbps: z.number().int().min(32).max(512).default(128).describe('AAC bitrate'),
    audio_aac_coder: z
      .enum(['fast', 'twoloop'])
      .default('fast')
      .describe(
        "ffmpeg's AAC coder: `fast` costs under half of `twoloop` and measured no worse at 96-160 kb/s (DESIGN.md)",
      ),
    audio_sample_rate: z
      .union([z.literal(44100), z.literal(48000)])
      .default(48000)
      .describe('AAC sample rate (44100 or 48000)'),
    media_dir: z
      .string()
      .min(1)
      .default('media')
      .describe("WAV files for `sound_on` (relative to the gateway's folder); ships `chime.wav`"),
    record_dir: z
      .string()
      .min(1)
      .default('recordings')
      .describe("where `record://` pushes write their MP4 files (relative to the gateway's folder)"),
    record_file_pattern: z
      .string()
      .regex(
        /^(?=.*\{(stream|id)\})(?:[\w.-]|\{(?:stream|start|id)\})+$/,
        'must name the stream ({stream}) or the push ({id}), and hold only letters, digits, "_", ".", "-" and {stream}, {start}, {id}',
      )
      .max(128)
      .default('{stream}-{start}')
      .describe(
        "a recording's name: `{stream}`, `{start}` (UTC, `20261124T102233Z`), `{id}` (the push's first 8 " +
          'characters); each part adds `-001.mp4`, `-002.mp4`…',
      ),
    record_part_s: z
      .number()
      .int()
      .min(10)
      .max(86400)
      .default(1800)
      .describe('a recording is split into parts of this long (s), each cut at a keyframe'),
    record_retention_hours: z
      .number()
      .min(0)
      .max(87600)
      .default(0)
      .describe('finished recordings older than this are deleted (0: kept)'),
    record_retention_max_mb: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('while finished recordings take more than this (MB), the oldest are deleted (0: no limit)'),
    record_file_mode: octalMode
      .default('0640')
      .describe("permissions of recording files (octal): the gateway's user reads and writes, its group reads"),
    record_dir_mode: octalMode
      .default('0750')
      .describe('permissions of `record_dir` when the gateway makes it (octal)'),
    record_min_free_mb: z
      .number()
      .int()
      .min(0)
      .default(512)
      .describe(
        'a recording ends (`failed`, saying why) when the disk of `record_dir` has less than this free (MB); none starts then',
      ),
    cluster: z
      .strictObject({
        redis_url: z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL'),
        node_id: z
          .string()
          .regex(/^[\w.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"')
          .optional(),
        advertise_url: z
          .string()
          .regex(/^https?:\/\/[^\s/]+\/?$/, 'must be http(s)://host:port, where the other nodes reach this one'),
        ...secretSource,
        key_prefix: z
          .string()
          .regex(/^[\w:.-]{0,32}$/, 'must be up to 32 letters, digits, "_", ":", "." or "-"')
          .default('gw:'),
        heartbeat_ms: z.number().int().min(100).max(10000).default(1000),
        node_timeout_ms: z.number().int().min(300).max(60000).default(3000),
        lease_ms: z.number().int().min(300).max(60000).default(3000),
        drain_timeout_ms: z.number().int().min(0).max(3600000).default(60000),
      })
      .superRefine(oneSecret)
      .superRefine((c, ctx) => {
        if (c.node_timeout_ms < 2 * c.heartbeat_ms)
          ctx.addIssue({ code: 'custom', path: ['node_timeout_ms'], message: 'must be at least twice heartbeat_ms' });
        if (c.lease_ms < 2 * c.heartbeat_ms)
          ctx.addIssue({ code: 'custom', path: ['lease_ms'], message: 'must be at least twice heartbeat_ms' });
      })
      .nullable()
      .default(null)
      .describe(
        '`null`: one gateway on its own. Else the nodes of a cluster on Redis: `{redis_url, advertise_url, secret | ' +
          'secret_env | secret_file, node_id, key_prefix, heartbeat_ms, node_timeout_ms, lease_ms, drain_timeout_ms}` ' +
          '(see [Running a cluster](#running-a-cluster)). The secret, the same on every node, seals the calls between ' +
          'nodes and the kept pushes in Redis',
      ),
    run_dir: z
      .string()
      .min(1)
      .default('run')
      .describe(
        "records the gateway's ffmpeg processes (`ffmpeg-<http_port>.json`); the next start ends any a killed gateway left",
      ),
    data_dir: z
      .string()
      .min(1)
      .default('data')
      .describe(
        "the gateway's durable state (relative to its folder): the pushes it keeps (`pushes-<http_port>.log`), the " +
          'mixers (`mixers-<http_port>.json`) and, unless `push_store_secret_env` or `push_store_secret_file` gives ' +
          "one, the secret they are sealed with (`push-store.key`, made at the first start, readable by the gateway's " +
          'user alone)',
      ),
    push_store_enabled: z
      .boolean()
      .default(true)
      .describe(
        'keep each push started over REST (`/push/startup`) in `data_dir`, so that a restart or a crash forgets ' +
          'none: it starts again, with its id and its audio as last commanded, when its stream publishes again. ' +
          "Forgotten when terminated, when its stream ends on purpose (WHIP DELETE, the SDK's unpublish) or when it " +
          'fails. Pushes the SDK asks for are not kept: the SDK asks again',
      ),
    push_store_secret_env: z
      .union([z.literal(''), z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')])
      .default('')
      .describe(
        "the environment variable holding the secret (16 or more characters) that seals the kept pushes' " +
          'destinations (stream keys, passwords) with AES-256-GCM',
      ),
    push_store_secret_file: z
      .string()
      .default('')
      .describe('a file holding that secret (instead of `push_store_secret_env`)'),
    push_store_window_ms: z
      .number()
      .int()
      .min(1000)
      .max(7 * 24 * 3600 * 1000)
      .default(600000)
      .describe(
        'a kept push whose stream is not published within this, after a restart or after its push ended without a terminate, is forgotten',
      ),
  })
  .superRefine((c, ctx) => {
    if (c.webrtc_ice_port_max <= c.webrtc_ice_port_min) {
      ctx.addIssue({
        code: 'custom',
        path: ['webrtc_ice_port_max'],
        message: 'must be greater than webrtc_ice_port_min',
      });
    }
    if (c.rtmp_push_auto_start && !c.rtmp_push_auto_start_url) {
      ctx.addIssue({
        code: 'custom',
        path: ['rtmp_push_auto_start_url'],
        message: 'must be set when rtmp_push_auto_start is true',
      });
    }
    if (c.limit_viewers_per_client > c.limit_viewers_per_stream) {
      ctx.addIssue({
        code: 'custom',
        path: ['limit_viewers_per_client'],
        message: `must not exceed limit_viewers_per_stream (${c.limit_viewers_per_stream}): one client would hold every viewer of a stream`,
      });
    }
    if (c.rtmp_out_buffer_start_size > c.rtmp_out_buffer_initial_size) {
      ctx.addIssue({
        code: 'custom',
        path: ['rtmp_out_buffer_start_size'],
        message: 'must not exceed rtmp_out_buffer_initial_size',
      });
    }
    if (Boolean(c.https_cert_file) !== Boolean(c.https_key_file)) {
      ctx.addIssue({
        code: 'custom',
        path: [c.https_cert_file ? 'https_key_file' : 'https_cert_file'],
        message: 'https_cert_file and https_key_file go together',
      });
    }
    if (c.https_port && !c.https_cert_file) {
      ctx.addIssue({ code: 'custom', path: ['https_port'], message: 'needs https_cert_file and https_key_file' });
    }
    if (c.push_store_secret_env && c.push_store_secret_file) {
      ctx.addIssue({
        code: 'custom',
        path: ['push_store_secret_file'],
        message: 'give push_store_secret_env or push_store_secret_file, not both',
      });
    }
    if (c.webrtc_video_min_bitrate_kbps > c.webrtc_video_bitrate_kbps) {
      ctx.addIssue({
        code: 'custom',
        path: ['webrtc_video_min_bitrate_kbps'],
        message: 'must not exceed webrtc_video_bitrate_kbps',
      });
    }
  });

export type GatewayConfig = z.infer<typeof configSchema>;
