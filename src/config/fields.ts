import { isIP } from 'node:net';
import { z } from 'zod';

export const port = z.number().int().min(1).max(65535);
/** A port to listen on, `0` meaning what its key says. */
export const listenPort = (fallback: number, description: string) =>
  z.number().int().min(0).max(65535).default(fallback).describe(description);
export const ipAddress = z.string().refine((v) => isIP(v) !== 0, 'must be an IP address');
export const cidr = z.string().refine((v) => {
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
export const secretSource = {
  secret: z.string().min(16, 'must be at least 16 characters').optional(),
  secret_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
    .optional(),
  secret_file: z.string().min(1).optional(),
};
/** File permissions as an octal string (`0640`): nobody but the owner may write. */
export const octalMode = z
  .string()
  .regex(/^0?[0-7]{3}$/, 'must be octal permissions such as 0640')
  .refine(
    (mode) => (parseInt(mode, 8) & 0o022) === 0,
    'must not let the group or others write (no 2 in the last two digits)',
  );

export const keyId = z.string().regex(/^[\w.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"');
export function oneSecret(
  value: { secret?: string; secret_env?: string; secret_file?: string },
  ctx: z.RefinementCtx,
): void {
  const given = [value.secret, value.secret_env, value.secret_file].filter((v) => v !== undefined).length;
  if (given !== 1)
    ctx.addIssue({ code: 'custom', path: ['secret'], message: 'give exactly one of secret, secret_env, secret_file' });
}

/** Destination host patterns: a host name (`*.youtube.com`), an IP address or a CIDR block. */
export const hostPattern = z
  .string()
  .regex(/^[A-Za-z0-9.*:_/[\]-]{1,253}$/, 'must be a host name (with * for a label), an address or a CIDR block');

/** What the fields of `Shape` parse to: the values a section's checks see. */
export type Parsed<Shape extends z.ZodRawShape> = z.output<z.ZodObject<Shape>>;

/*
 * Field builders: one line per numeric setting, named by its unit: `(min, max, default, description)`.
 * The description is what the configuration table shows; settings inside an object (a webhook's, the
 * cluster's) go without one.
 */

type Builder<Max = number> = (
  min: number,
  max: Max,
  fallback: number,
  description?: string,
) => z.ZodDefault<z.ZodNumber>;

/** Whole numbers within `min`..`max` (no upper bound when `max` is `null`). */
const whole: Builder<number | null> = (min, max, fallback, description) => {
  const bounded = max === null ? z.number().int().min(min) : z.number().int().min(min).max(max);
  const field = bounded.default(fallback);
  return description === undefined ? field : field.describe(description);
};
/** Any number within `min`..`max`, fractions included. */
const real: Builder = (min, max, fallback, description) => {
  const field = z.number().min(min).max(max).default(fallback);
  return description === undefined ? field : field.describe(description);
};

/** Milliseconds, whole. */
export const ms: Builder = whole;
/** Seconds, whole. */
export const seconds: Builder = whole;
/** Hours, fractions allowed. */
export const hours: Builder = real;
/** Bytes. */
export const bytes: Builder = whole;
/** Megabytes (1 MB = 1,048,576 bytes), whole; `max` may be `null`: as large as the disk. */
export const megabytes: Builder<number | null> = whole;
/** Kilobits per second, whole. */
export const kbps: Builder = whole;
/** Pixels, whole. */
export const pixels: Builder = whole;
/** A number of things (sessions, attempts, messages). */
export const count: Builder = whole;
/** A percentage, fractions allowed. */
export const percent: Builder = real;
/** A share of a whole, fractions allowed. */
export const fraction: Builder = real;
