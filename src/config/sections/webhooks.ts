import { z } from 'zod';
import { LIFECYCLE_EVENTS } from '../../core/lifecycle-events.js';
import { ms, count, keyId, oneSecret, secretSource } from '../fields.js';

/**
 * The endpoints told of lifecycle events (`webhooks/`).
 */
export const webhookFields = {
  webhooks: z
    .array(
      z
        .strictObject({
          id: keyId,
          url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL'),
          /** Empty: every event. */
          events: z.array(z.enum(LIFECYCLE_EVENTS)).default([]),
          timeout_ms: ms(100, 60_000, 5000),
          max_attempts: count(1, 100, 8),
          queue_limit: count(1, 100_000, 1000),
          ...secretSource,
        })
        .superRefine(oneSecret),
    )
    .default([])
    .describe(
      'endpoints told of stream and push events: `{id, url, secret | secret_env | secret_file, events, timeout_ms, ' +
        'max_attempts, queue_limit}` (see [Webhooks](#webhooks))',
    ),
};
