import { z } from 'zod';
import { ms, count, ipAddress, type Parsed } from '../fields.js';

/**
 * Pushes to RTMP(S) destinations (`links/`, `pushes/`): the RTMP connection, reconnecting a dropped
 * destination (`pushes/restore.ts`), stalls and lag (`links/lag-guard.ts`), the publisher's grace, output
 * buffering (`links/send-buffer.ts`) and pushes started for every stream (`plane/core.ts`).
 */
export const pushFields = {
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
  rtmp_push_restore_attempts: count(0, 100_000, 0, 'attempts per outage before failing; `0` = unlimited'),
  rtmp_push_restore_interval_ms: ms(
    100,
    600_000,
    1000,
    'wait before the first attempt; later ones grow ×1.5, to 2 s, each lengthened by up to 25 % (jitter); a ' +
      'refusal other than "already publishing" is tried once more, then fails',
  ),
  rtmp_push_stall_timeout_ms: ms(
    1000,
    60_000,
    5000,
    'no acknowledgement for this long, with output waiting, is a drop (cut network, stopped server)',
  ),
  rtmp_push_max_lag_ms: z
    .union([z.literal(0), z.number().int().min(500).max(60000)])
    .default(3000)
    .describe(
      'a destination lagging more than this gets media dropped up to a keyframe (counted in `framesDropped`); `0`: never',
    ),
  rtmp_push_publisher_grace_ms: ms(
    0,
    3_600_000,
    30_000,
    'a publisher that goes away (page closed, network gone) leaves its pushes in `standby`, sending the last ' +
      'picture and silence, live again when the stream is published again; they end after this long; `0` = at once',
  ),
  rtmp_out_buffer_enabled: z
    .boolean()
    .default(false)
    .describe("output buffering: hold media, then send it paced by its timestamps (smooths the publisher's jitter)"),
  rtmp_out_buffer_start_size: ms(
    1,
    30_000,
    300,
    'media held before sending starts, and again after the buffer ran dry (ms)',
  ),
  rtmp_out_buffer_initial_size: ms(
    1,
    30_000,
    2000,
    'the most media ever held, so the most delay added (ms); beyond it, what is over is sent',
  ),
  rtmp_out_buffer_polling_time: ms(5, 1000, 100, 'how often due media is sent (ms)'),
  rtmp_out_buffer_max_bufferings_allowed: count(
    -1,
    1_000_000,
    -1,
    'times the buffer may run dry and fill again, then media passes straight on; `-1` = no limit',
  ),
  rtmp_push_auto_start: z
    .boolean()
    .default(false)
    .describe('republish every published stream to `rtmp_push_auto_start_url` (a debugging aid)'),
  rtmp_push_auto_start_url: z
    .union([z.literal(''), z.string().regex(/^rtmps?:\/\/\S+$/i, 'must be an rtmp:// or rtmps:// URL')])
    .default('')
    .describe('destination of auto-started pushes, named by the rules above'),
};

/** Pushes started for every stream have a destination. */
export function checkAutoStart(c: Parsed<typeof pushFields>, ctx: z.RefinementCtx): void {
  if (c.rtmp_push_auto_start && !c.rtmp_push_auto_start_url) {
    ctx.addIssue({
      code: 'custom',
      path: ['rtmp_push_auto_start_url'],
      message: 'must be set when rtmp_push_auto_start is true',
    });
  }
}

/** The send buffer starts sending before it holds the most it may. */
export function checkSendBuffer(c: Parsed<typeof pushFields>, ctx: z.RefinementCtx): void {
  if (c.rtmp_out_buffer_start_size > c.rtmp_out_buffer_initial_size) {
    ctx.addIssue({
      code: 'custom',
      path: ['rtmp_out_buffer_start_size'],
      message: 'must not exceed rtmp_out_buffer_initial_size',
    });
  }
}
