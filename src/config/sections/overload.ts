import { z } from 'zod';
import { count, fraction, ms, percent } from '../fields.js';

/**
 * The worker threads that run the streams (`plane/workers.ts`), the load each measures (`core/load.ts`),
 * which refuses new publishes and pushes past its limits, and the shedder (`plane/shedder.ts`).
 */
export const overloadFields = {
  workers: z
    .union([z.literal('auto'), z.number().int().min(0).max(64)])
    .default('auto')
    .describe(
      'worker threads that run the streams, one stream (its publisher and pushes) in one worker: `auto` is one per ' +
        'core; `0` runs them in the main thread beside the HTTP server',
    ),
  overload_event_loop_delay_ms: ms(
    0,
    10_000,
    150,
    'each worker measures its own event loop: a new publish (WHIP, SDK) goes to a worker that is not past its ' +
      "limits, and gets `503` with `Retry-After: 3` when none is; a push (`/push/startup`, auto-start, the SDK's " +
      "`rtmpUrl`) gets it when its stream's worker is past them. Past: the event loop ran this late (p99 over each " +
      'second, beyond its 50 ms sampling) three seconds in a row (load that lasts, not a moment), and for 3 s ' +
      'after; what runs goes on; `0` = off',
  ),
  overload_event_loop_utilization: fraction(0, 1, 0.9, 'the same, for the share of time the event loop is busy (0..1)'),
  shed_min_pushes: count(
    1,
    10_000,
    1,
    'on a machine out of CPU, pushes are shed (ended until the load passes) one at a time while it helps, but never ' +
      'below this many running',
  ),
  overload_machine_cpu_percent: percent(
    0,
    100,
    90,
    "the same, for the CPU in use: the container's share of its quota when its cgroup sets one (v2 `cpu.max`, v1 " +
      "`cpu.cfs_quota_us`), else the whole machine's (% of all cores, other programs included). The gateway's own " +
      'event loops stay quick long after ffmpeg, its media workers and anything beside it have taken the machine, ' +
      'when every stream loses frames; `0` = off',
  ),
};
