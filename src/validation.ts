import type { z } from 'zod';
import { GatewayError } from './errors.js';

/** Parses a body with a zod schema; the error names the first offending field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `${[...issue.path, k].join('.')}: unknown field`).join('; ');
    }
    const field = issue.path.join('.') || 'body';
    return `${field}: ${issue.message}`;
  });
  const first = result.error.issues[0];
  const field = first ? (first.code === 'unrecognized_keys' ? [...first.path, first.keys[0]] : first.path).join('.') : undefined;
  throw new GatewayError('invalid_request', messages.join('; '), field || undefined);
}
