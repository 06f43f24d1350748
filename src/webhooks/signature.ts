import { wallClockMs } from '../core/clock.js';
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures as the Standard Webhooks specification has them, so its libraries verify
 * ours: `webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`.
 * The key is the secret's bytes, or for a secret written `whsec_<base64>`, the bytes it encodes.
 */
export function signingKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

export function sign(key: Buffer, id: string, timestampS: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

/** How far a receiver lets a delivery's timestamp be from its own clock: older ones are replays. */
const TOLERANCE_S = 300;

/**
 * What a receiver does (and the tests do): the signature matches one of those in the header, and
 * the timestamp is recent. Keeping the ids of the last `TOLERANCE_S` seconds also refuses a replay
 * within that window.
 */
export function verify(
  key: Buffer,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  nowS = wallClockMs() / 1000,
): boolean {
  const timestampS = Number(headers.timestamp);
  if (!Number.isInteger(timestampS) || Math.abs(nowS - timestampS) > TOLERANCE_S) return false;
  const expected = Buffer.from(sign(key, headers.id, timestampS, body));
  return headers.signature.split(' ').some((given) => {
    const candidate = Buffer.from(given);
    return candidate.length === expected.length && timingSafeEqual(candidate, expected);
  });
}
