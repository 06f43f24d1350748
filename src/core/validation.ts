import { z } from 'zod';
import { GatewayError } from './errors.js';

/**
 * Parses a body with a zod schema; the error names the first offending field (`root` when it is the
 * whole value: a request's `body`, say).
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, root?: string): z.infer<S> {
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
  const field = first
    ? (first.code === 'unrecognized_keys' ? [...first.path, first.keys[0]] : first.path).join('.')
    : undefined;
  throw new GatewayError('invalid_request', messages.join('; '), field || root);
}

/**
 * A boolean as Web Call Server's documents write it: `true`, or the string `"true"` (and `false`,
 * `"false"`). Its integrations send either, so every boolean of a REST body takes both.
 */
export function wcsBoolean(): z.ZodType<boolean, boolean | 'true' | 'false'> {
  return z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')], {
    error: 'expected true or false (or "true" or "false")',
  });
}

/**
 * A number as Web Call Server's documents write it, or as a string of one (`"640"`); then held to
 * `schema`, so its limits name the field as any number's do.
 */
export function wcsNumber<S extends z.ZodType<number, number>>(schema: S): z.ZodType<z.output<S>, number | string> {
  return z
    .union(
      [
        z.number(),
        z
          .string()
          .regex(/^-?\d+(\.\d+)?$/)
          .transform(Number),
      ],
      { error: 'expected a number (or a string of one)' },
    )
    .pipe(schema);
}
