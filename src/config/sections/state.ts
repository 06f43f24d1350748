import { z } from 'zod';
import { ms, type Parsed } from '../fields.js';

/**
 * What the gateway keeps on disk between runs: its ffmpeg processes (`run_dir`, read at start by
 * `server.ts`) and the pushes and mixers it keeps (`store/open.ts`, `control/push-keeper.ts`).
 */
export const stateFields = {
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
  push_store_window_ms: ms(
    1000,
    7 * 24 * 3600 * 1000,
    600_000,
    'a kept push whose stream is not published within this, after a restart or after its push ended without a terminate, is forgotten',
  ),
};

/** The kept pushes' secret comes from one place. */
export function checkPushStoreSecret(c: Parsed<typeof stateFields>, ctx: z.RefinementCtx): void {
  if (c.push_store_secret_env && c.push_store_secret_file) {
    ctx.addIssue({
      code: 'custom',
      path: ['push_store_secret_file'],
      message: 'give push_store_secret_env or push_store_secret_file, not both',
    });
  }
}
