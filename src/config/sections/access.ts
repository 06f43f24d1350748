import { z } from 'zod';
import { count, hostPattern, keyId, ms, oneSecret, seconds, secretSource } from '../fields.js';

/** Stream-name patterns: exact names, or `*` for any run of characters (`team-*`). */
const streamPattern = z
  .string()
  .regex(/^[A-Za-z0-9_.*-]{1,128}$/, 'must be a stream name, "*" matching any characters');
const destinationGrant = z.union([z.enum(['none', 'any']), z.array(hostPattern).min(1)]);

/**
 * Who may call the control API and publish: API keys, publish keys and JWTs, the publish hook
 * (`security/access.ts`, `security/publish-auth.ts`, `http/guard.ts`).
 */
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
  auth_failures_per_minute: count(1, 10_000, 10, 'failed authentications per address before `429`'),
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
      '`{id, secret…, streams: [patterns], destinations: none | any | [host patterns], view: false, ' +
        'mixers: [patterns]}`; `view: true` lets the key also watch its streams over WHEP; `mixers` names the ' +
        'mixers its publisher may start and add its stream to from the SDK',
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
  publish_jwt_max_lifetime_s: seconds(
    60,
    31_536_000,
    86_400,
    'publish JWTs must carry `exp` and be valid at most this long (`exp - iat`, or `exp - now` when longer)',
  ),
  publish_jwt_clock_tolerance_s: seconds(
    0,
    300,
    5,
    "clock difference tolerated with the tokens' issuer for `exp`, `nbf`, `iat`",
  ),
  publish_auth_url: z
    .union([z.literal(''), z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL')])
    .default('')
    .describe('your endpoint deciding publishes no key covers (2xx allows)'),
  publish_auth_timeout_ms: ms(100, 30_000, 3000, 'how long `publish_auth_url` has to answer (ms)'),
};
