import { isIP } from 'node:net';
import { z } from 'zod';

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
 * Every configuration key, with its default. `config/gateway.yml` documents each one; keep the two
 * in step. Names follow Web Call Server's properties where it has one.
 */
export const configSchema = z
  .strictObject({
    http_host: z.string().min(1).default('127.0.0.1'),
    http_port: z.number().int().min(0).max(65535).default(8080),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    webrtc_ice_addresses: z.array(ipAddress).min(1).default(['127.0.0.1']),
    webrtc_ice_port_min: port.default(40000),
    webrtc_ice_port_max: port.default(49999),
    webrtc_ice_remote_networks: z.array(cidr).default([]),
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
