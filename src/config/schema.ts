import { isIP } from 'node:net';
import { z } from 'zod';
import { LIFECYCLE_EVENTS } from '../lifecycle-events.js';

const port = z.number().int().min(1).max(65535);
const ipAddress = z.string().refine((v) => isIP(v) !== 0, 'must be an IP address');
const cidr = z.string().refine((v) => {
  const [address, bits, extra] = v.split('/');
  if (extra !== undefined || address === undefined || bits === undefined) return false;
  const family = isIP(address);
  const n = Number(bits);
  return family !== 0 && Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128);
}, 'must be a CIDR block such as 127.0.0.0/8');

/**
 * A secret given inline, by the name of an environment variable, or by a file holding it (one of
 * the three). Inline secrets suit tests; operators keep them out of the file.
 */
const secretSource = {
  secret: z.string().min(16, 'must be at least 16 characters').optional(),
  secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
  secret_file: z.string().min(1).optional(),
};
const keyId = z.string().regex(/^[\w.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"');
function oneSecret(value: { secret?: string; secret_env?: string; secret_file?: string }, ctx: z.RefinementCtx): void {
  const given = [value.secret, value.secret_env, value.secret_file].filter((v) => v !== undefined).length;
  if (given !== 1) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'give exactly one of secret, secret_env, secret_file' });
}
/** Stream-name patterns: exact names, or `*` for any run of characters (`team-*`). */
const streamPattern = z.string().regex(/^[A-Za-z0-9_.*-]{1,128}$/, 'must be a stream name, "*" matching any characters');
/** Destination host patterns: a host name (`*.youtube.com`), an IP address or a CIDR block. */
const hostPattern = z.string().regex(/^[A-Za-z0-9.*:_\/[\]-]{1,253}$/, 'must be a host name (with * for a label), an address or a CIDR block');
export const destinationGrant = z.union([z.enum(['none', 'any']), z.array(hostPattern).min(1)]);

/**
 * Every configuration key, with its default. `config/gateway.yml` documents each one; keep the two
 * in step. Names follow Web Call Server's properties where it has one.
 */
export const configSchema = z
  .strictObject({
    http_host: z.string().min(1).default('127.0.0.1'),
    http_port: z.number().int().min(0).max(65535).default(8080),
    /** Names the gateway answers to (Host header); empty: its own address, and loopback names when it listens on loopback. */
    http_allowed_hosts: z.array(z.string().regex(/^[A-Za-z0-9.*:[\]-]{1,253}$/, 'must be a host name, "*.example.com" or an address')).default([]),
    /** Page origins allowed to use the REST API and the SDK's WebSocket; empty: the gateway's own and localhost pages. */
    http_allowed_origins: z.array(z.string().regex(/^(\*|https?:\/\/[A-Za-z0-9.*:[\]-]+)$/, 'must be an origin such as https://app.example.com, or "*"')).default([]),
    http_request_timeout_ms: z.number().int().min(1000).max(600000).default(30000),
    http_headers_timeout_ms: z.number().int().min(1000).max(120000).default(10000),
    https_cert_file: z.string().default(''),
    https_key_file: z.string().default(''),
    /** A second port for HTTPS; 0: HTTPS replaces HTTP on http_port when a certificate is set. */
    https_port: z.number().int().min(0).max(65535).default(0),
    /** Take the client address from X-Forwarded-For: true for any proxy, or the proxies' CIDR blocks. */
    trust_proxy: z.union([z.boolean(), z.array(cidr)]).default(false),

    api_keys: z
      .array(
        z
          .strictObject({ id: keyId, scope: z.array(z.enum(['control', 'metrics'])).min(1).default(['control', 'metrics']), ...secretSource })
          .superRefine(oneSecret),
      )
      .default([]),
    /** Serve the control API without keys on a non-loopback address (refused unless set). */
    api_auth_disabled: z.boolean().default(false),
    auth_failures_per_minute: z.number().int().min(1).max(10000).default(10),
    publish_keys: z
      .array(
        z
          .strictObject({ id: keyId, streams: z.array(streamPattern).min(1).default(['*']), destinations: destinationGrant.default('none'), ...secretSource })
          .superRefine(oneSecret),
      )
      .default([]),
    publish_jwt_keys: z
      .array(
        z
          .strictObject({ id: keyId, alg: z.enum(['HS256', 'ES256', 'RS256']), public_key_file: z.string().min(1).optional(), ...secretSource })
          .superRefine((k, ctx) => {
            if (k.alg === 'HS256') return oneSecret(k, ctx);
            if (!k.public_key_file) ctx.addIssue({ code: 'custom', path: ['public_key_file'], message: `is required for ${k.alg}` });
            if (k.secret ?? k.secret_env ?? k.secret_file) ctx.addIssue({ code: 'custom', path: ['secret'], message: `${k.alg} takes public_key_file, not a secret` });
          }),
      )
      .default([]),
    publish_jwt_issuer: z.string().default(''),
    publish_jwt_audience: z.string().default(''),
    /** The longest a publish JWT may be valid (exp - iat, or exp - now when longer); tokens must carry exp. */
    publish_jwt_max_lifetime_s: z.number().int().min(60).max(31536000).default(86400),
    /** Clock difference tolerated with the tokens' issuer when checking exp, nbf and iat. */
    publish_jwt_clock_tolerance_s: z.number().int().min(0).max(300).default(5),
    publish_auth_url: z.union([z.literal(''), z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL')]).default(''),
    publish_auth_timeout_ms: z.number().int().min(100).max(30000).default(3000),

    /** Endpoints told of what happens to streams and pushes, each delivery signed with its secret. */
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
      .default([]),

    limit_publishers: z.number().int().min(1).max(100000).default(100),
    limit_transponders: z.number().int().min(1).max(100000).default(200),
    limit_transponders_per_stream: z.number().int().min(1).max(1000).default(10),
    /** Concurrent WHIP sessions and SDK WebSockets from one client address. */
    limit_sessions_per_client: z.number().int().min(1).max(100000).default(20),
    /** SDK WebSockets open at once, from every client together (503 beyond). */
    limit_signaling_sessions: z.number().int().min(1).max(100000).default(1000),
    /** An SDK WebSocket that has published nothing for this long is closed (it never authenticated or published). */
    signaling_idle_timeout_ms: z.number().int().min(1000).max(3600000).default(30000),
    /** Operator console event streams open at once: per client address (429 beyond) and in total (503 beyond). */
    limit_console_streams_per_client: z.number().int().min(1).max(1000).default(4),
    limit_console_streams: z.number().int().min(1).max(10000).default(32),
    /** Snapshots decoded at once (one ffmpeg each), and requests that may wait for one (503 beyond). */
    limit_snapshot_decoders: z.number().int().min(1).max(64).default(2),
    limit_snapshot_queue: z.number().int().min(0).max(1000).default(16),

    /**
     * Worker threads that run the streams, each with its own event loop: 'auto' is one per core;
     * 0 runs them in the main thread with the HTTP server.
     */
    workers: z
      .union([z.literal('auto'), z.number().int().min(0).max(64)])
      .default('auto'),

    /** New publishes and pushes are refused (503) past any of these; 0 turns one off. */
    overload_event_loop_delay_ms: z.number().int().min(0).max(10000).default(150),
    overload_event_loop_utilization: z.number().min(0).max(1).default(0.9),
    overload_machine_cpu_percent: z.number().min(0).max(100).default(0),

    destination_allow_loopback: z.boolean().default(false),
    destination_allow_private: z.boolean().default(false),
    destination_allowed_hosts: z.array(hostPattern).default([]),
    destination_denied_hosts: z.array(hostPattern).default([]),
    destination_allowed_ports: z.array(port).default([]),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `auto`: readable lines when stdout is a terminal, JSON lines otherwise. */
    log_format: z.enum(['auto', 'json', 'pretty']).default('auto'),

    /**
     * The WebRTC stack publishers connect to: mediasoup's C++ worker (one process per worker thread,
     * built from the npm package against Debian's libraries), or werift (TypeScript, in the thread).
     */
    webrtc_engine: z.enum(['mediasoup', 'werift']).default('mediasoup'),
    /**
     * How mediasoup hands each publisher's RTP to the gateway: `plain`, plain RTP over loopback UDP
     * (a PlainTransport), or `direct`, over the worker's channel (a DirectTransport).
     */
    webrtc_mediasoup_rtp_handoff: z.enum(['plain', 'direct']).default('plain'),
    webrtc_ice_addresses: z.array(ipAddress).min(1).default(['127.0.0.1']),
    webrtc_ice_port_min: port.default(40000),
    webrtc_ice_port_max: port.default(49999),
    webrtc_ice_remote_networks: z.array(cidr).default([]),
    /** Resolve `.local` (mDNS) candidates, which sends multicast queries; off: they are ignored. */
    webrtc_ice_allow_mdns: z.boolean().default(false),
    /** A session whose ICE and DTLS are not done after this long is closed and its sockets freed. */
    webrtc_connect_timeout_ms: z.number().int().min(1000).max(120000).default(20000),
    webrtc_udp_receive_buffer_bytes: z.number().int().min(65536).max(256 * 1024 * 1024).default(4 * 1024 * 1024),
    webrtc_video_bitrate_kbps: z.number().int().min(100).max(50000).default(2500),
    webrtc_video_min_bitrate_kbps: z.number().int().min(50).max(50000).default(300),
    webrtc_keyframe_interval_ms: z.number().int().min(500).max(10000).default(2000),
    webrtc_media_timeout_ms: z.number().int().min(1000).max(60000).default(5000),
    webrtc_video_codecs: z.array(z.enum(['H264', 'VP8', 'VP9'])).min(1).default(['H264', 'VP8', 'VP9']),

    rtmp_transponder_stream_name_prefix: z.string().regex(/^[\w.-]*$/, 'may hold letters, digits, _ . - only').default('rtmp_'),
    rtmp_transponder_full_url: z.boolean().default(false),
    rtmp_flash_ver_subscriber: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII')
      .default('FMLE/3.0 (compatible; FMSc/1.0)'),
    rtmp_publisher_ip: z.union([z.literal(''), ipAddress]).default(''),
    rtmps_ca_file: z.string().default(''),
    rtmp_transponder_send_metadata: z.boolean().default(true),
    rtmp_push_restore: z.boolean().default(true),
    rtmp_push_restore_attempts: z.number().int().min(0).max(100000).default(0),
    rtmp_push_restore_interval_ms: z.number().int().min(100).max(600000).default(1000),
    rtmp_push_stall_timeout_ms: z.number().int().min(1000).max(60000).default(5000),
    rtmp_push_max_lag_ms: z.union([z.literal(0), z.number().int().min(500).max(60000)]).default(3000),
    rtmp_push_publisher_grace_ms: z.number().int().min(0).max(3600000).default(30000),
    rtmp_out_buffer_enabled: z.boolean().default(false),
    rtmp_out_buffer_start_size: z.number().int().min(1).max(30000).default(300),
    rtmp_out_buffer_initial_size: z.number().int().min(1).max(30000).default(2000),
    rtmp_out_buffer_polling_time: z.number().int().min(5).max(1000).default(100),
    rtmp_out_buffer_max_bufferings_allowed: z.number().int().min(-1).max(1000000).default(-1),
    rtmp_push_auto_start: z.boolean().default(false),
    rtmp_push_auto_start_url: z.union([z.literal(''), z.string().regex(/^rtmps?:\/\/\S+$/i, 'must be an rtmp:// or rtmps:// URL')]).default(''),

    ffmpeg_path: z.string().min(1).default('ffmpeg'),
    ffmpeg_stop_timeout_ms: z.number().int().min(100).max(60000).default(2000),
    ffmpeg_start_timeout_ms: z.number().int().min(1000).max(60000).default(10000),
    transcoding_enabled: z.boolean().default(true),
    transcoding_keep_aspect_ratio: z.boolean().default(true),
    transcoding_video_bitrate_kbps: z.number().int().min(100).max(50000).default(2500),
    transcoding_preset: z
      .enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium'])
      .default('veryfast'),
    audio_bitrate_kbps: z.number().int().min(32).max(512).default(128),
    audio_sample_rate: z.union([z.literal(44100), z.literal(48000)]).default(48000),
    media_dir: z.string().min(1).default('media'),
    run_dir: z.string().min(1).default('run'),
  })
  .superRefine((c, ctx) => {
    if (c.webrtc_ice_port_max <= c.webrtc_ice_port_min) {
      ctx.addIssue({ code: 'custom', path: ['webrtc_ice_port_max'], message: 'must be greater than webrtc_ice_port_min' });
    }
    if (c.rtmp_push_auto_start && !c.rtmp_push_auto_start_url) {
      ctx.addIssue({ code: 'custom', path: ['rtmp_push_auto_start_url'], message: 'must be set when rtmp_push_auto_start is true' });
    }
    if (c.rtmp_out_buffer_start_size > c.rtmp_out_buffer_initial_size) {
      ctx.addIssue({ code: 'custom', path: ['rtmp_out_buffer_start_size'], message: 'must not exceed rtmp_out_buffer_initial_size' });
    }
    if (Boolean(c.https_cert_file) !== Boolean(c.https_key_file)) {
      ctx.addIssue({ code: 'custom', path: [c.https_cert_file ? 'https_key_file' : 'https_cert_file'], message: 'https_cert_file and https_key_file go together' });
    }
    if (c.https_port && !c.https_cert_file) {
      ctx.addIssue({ code: 'custom', path: ['https_port'], message: 'needs https_cert_file and https_key_file' });
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
export type ConfigKey = keyof GatewayConfig;
