import { z } from 'zod';
import { ms, count, type Parsed } from '../fields.js';

/**
 * How much runs at once, counted by the slots of the publishers' registry, the pushes' service, the
 * WHEP viewers, the WHIP and SDK sessions (`signaling/server.ts`), the console's event streams, destination
 * checks and snapshots (`gateway/`); beside them the mixers (`control/rooms.ts`) and the idle timeouts that free
 * a mixer's or a WebSocket's place.
 */
export const limitFields = {
  limit_publishers: count(1, 100_000, 100, 'publishers at once, all workers together (`503` beyond)'),
  limit_transponders: count(1, 100_000, 200, 'pushes at once, all workers together (`503` beyond)'),
  limit_transponders_per_stream: count(1, 1000, 10, 'pushes of one stream (`429` beyond)'),
  limit_viewers: count(0, 100_000, 50, 'WHEP viewers at once, all workers together (`503` beyond; 0: none)'),
  limit_viewers_per_stream: count(1, 10_000, 10, 'WHEP viewers of one stream (`429` beyond)'),
  limit_viewers_per_client: count(
    0,
    10_000,
    0,
    'WHEP viewers of one stream from one client address (`429` beyond), at most limit_viewers_per_stream; 0: half of it, rounded up',
  ),
  limit_mixers: count(
    0,
    1000,
    4,
    'mixers at once in each worker (`503` beyond; 0: none); each takes about half a core',
  ),
  mixer_auto_start: z
    .boolean()
    .default(false)
    .describe(
      'a stream named `user1#room1` publishing joins the mixer `mixer://room1`, started for it (Web Call ' +
        "Server's); `user1#room1#desktop`, a screen, is placed large",
    ),
  mixer_idle_timeout_ms: ms(
    0,
    3_600_000,
    10_000,
    'a mixer started by mixer_auto_start ends once it has had no input this long',
  ),
  limit_sessions_per_client: count(
    1,
    100_000,
    20,
    'WHIP sessions and SDK WebSockets at once from one client address (`429` beyond)',
  ),
  limit_signaling_sessions: count(1, 100_000, 1000, 'SDK WebSockets open at once from all clients (`503` beyond)'),
  signaling_idle_timeout_ms: ms(
    1000,
    3_600_000,
    30_000,
    'an SDK WebSocket that has published nothing by then is closed (code 4408; the SDK connects again quietly)',
  ),
  limit_console_streams_per_client: count(
    1,
    1000,
    4,
    'operator console event streams per client address (`429` beyond)',
  ),
  limit_console_streams: count(1, 10_000, 32, 'operator console event streams in total (`503` beyond)'),
  limit_checks: count(
    1,
    256,
    4,
    "destination checks (`push/check`, the SDK's) made at once, all callers together; an SRT check runs an ffmpeg",
  ),
  limit_checks_queue: count(0, 1000, 8, 'destination checks waiting for their turn (`503` beyond)'),
  limit_checks_per_client: count(
    1,
    256,
    2,
    'destination checks of one client address under way or waiting (`429` beyond)',
  ),
  limit_snapshot_decoders: count(
    1,
    64,
    2,
    'snapshot requests served at once (each thread decodes in one ffmpeg at a time)',
  ),
  limit_snapshot_queue: count(0, 1000, 16, 'snapshot requests waiting for a decoder (`503` beyond)'),
};

/** One client may not hold every viewer of a stream. */
export function checkViewersPerClient(c: Parsed<typeof limitFields>, ctx: z.RefinementCtx): void {
  if (c.limit_viewers_per_client > c.limit_viewers_per_stream) {
    ctx.addIssue({
      code: 'custom',
      path: ['limit_viewers_per_client'],
      message: `must not exceed limit_viewers_per_stream (${c.limit_viewers_per_stream}): one client would hold every viewer of a stream`,
    });
  }
}
