import { isIP } from 'node:net';
import { z } from 'zod';

export const port = z.number().int().min(1).max(65535);
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
/** Stream-name patterns: exact names, or `*` for any run of characters (`team-*`). */
const streamPattern = z
  .string()
  .regex(/^[A-Za-z0-9_.*-]{1,128}$/, 'must be a stream name, "*" matching any characters');
/** Destination host patterns: a host name (`*.youtube.com`), an IP address or a CIDR block. */
export const hostPattern = z
  .string()
  .regex(/^[A-Za-z0-9.*:_/[\]-]{1,253}$/, 'must be a host name (with * for a label), an address or a CIDR block');
const destinationGrant = z.union([z.enum(['none', 'any']), z.array(hostPattern).min(1)]);

/** Who may call the control API and publish: keys, JWTs and the hook (`configSchema` takes these keys as they are). */
export const accessFields = {
  api_keys: z
    .array(
      z
        .strictObject({
          id: keyId,
          scope: z
            .array(z.enum(['control', 'metrics']))
            .min(1)
            .default(['control', 'metrics']),
          ...secretSource,
        })
        .superRefine(oneSecret),
    )
    .default([])
    .describe('control API keys: `{id, secret | secret_env | secret_file, scope: [control, metrics]}`'),
  api_auth_disabled: z
    .boolean()
    .default(false)
    .describe('serve the control API without keys off loopback (refused otherwise)'),
  auth_failures_per_minute: z
    .number()
    .int()
    .min(1)
    .max(10000)
    .default(10)
    .describe('failed authentications per address before `429`'),
  publish_keys: z
    .array(
      z
        .strictObject({
          id: keyId,
          streams: z.array(streamPattern).min(1).default(['*']),
          destinations: destinationGrant.default('none'),
          view: z.boolean().default(false),
          mixers: z.array(streamPattern).default([]),
          ...secretSource,
        })
        .superRefine(oneSecret),
    )
    .default([])
    .describe(
      '`{id, secret…, streams: [patterns], destinations: none | any | [host patterns], view: false, mixers: [patterns]}`; `view: true` lets the key also watch its streams over WHEP; `mixers` names the mixers its publisher may start and add its stream to from the SDK',
    ),
  publish_jwt_keys: z
    .array(
      z
        .strictObject({
          id: keyId,
          alg: z.enum(['HS256', 'ES256', 'RS256']),
          public_key_file: z.string().min(1).optional(),
          ...secretSource,
        })
        .superRefine((k, ctx) => {
          if (k.alg === 'HS256') return oneSecret(k, ctx);
          if (!k.public_key_file)
            ctx.addIssue({ code: 'custom', path: ['public_key_file'], message: `is required for ${k.alg}` });
          if (k.secret ?? k.secret_env ?? k.secret_file)
            ctx.addIssue({ code: 'custom', path: ['secret'], message: `${k.alg} takes public_key_file, not a secret` });
        }),
    )
    .default([])
    .describe('`{id (the JWT kid), alg: HS256 | ES256 | RS256, secret… | public_key_file}`'),
  publish_jwt_issuer: z.string().default('').describe('required `iss` of publish JWTs, when set'),
  publish_jwt_audience: z.string().default('').describe('required `aud` of publish JWTs, when set'),
  publish_jwt_max_lifetime_s: z
    .number()
    .int()
    .min(60)
    .max(31536000)
    .default(86400)
    .describe('publish JWTs must carry `exp` and be valid at most this long (`exp - iat`, or `exp - now` when longer)'),
  publish_jwt_clock_tolerance_s: z
    .number()
    .int()
    .min(0)
    .max(300)
    .default(5)
    .describe("clock difference tolerated with the tokens' issuer for `exp`, `nbf`, `iat`"),
  publish_auth_url: z
    .union([z.literal(''), z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL')])
    .default('')
    .describe('your endpoint deciding publishes no key covers (2xx allows)'),
  publish_auth_timeout_ms: z
    .number()
    .int()
    .min(100)
    .max(30000)
    .default(3000)
    .describe('how long `publish_auth_url` has to answer (ms)'),
};
