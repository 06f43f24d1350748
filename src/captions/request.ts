import { z } from 'zod';
import { streamNameSchema } from '../publishers/stream-name.js';
import { captionRows } from './cea608.js';
import { parseBody, wcsBoolean, wcsNumber } from '../core/validation.js';
import { invalid } from '../core/errors.js';

/** A caption fills at most this many rows of 32 columns, as roll-up shows them. */
const MAX_ROWS = 4;

// eslint-disable-next-line no-control-regex -- what is refused is exactly the control characters
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Characters that steer text without being shown: zero-width spaces and joiners, the Arabic letter
 * mark, bidirectional marks, embeddings, overrides and isolates, the word joiner and the byte order
 * mark. 608 has no code for them, and in WebVTT they reorder or hide what follows: they are removed.
 */
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/gu;

/**
 * A caption's text, composed (NFC: "cafe" and a combining acute accent, as macOS and speech engines
 * write it, is "café") and without invisible characters; printable, and within four rows of 32
 * columns once wrapped.
 */
export const captionTextSchema = z
  .string()
  .overwrite((text) => text.normalize('NFC').replace(INVISIBLE, ''))
  .min(1)
  .max(4 * 32 * 2)
  .refine((text) => !CONTROL.test(text), 'must hold no control characters (line breaks included: rows are wrapped)')
  .refine((text) => text.trim().length > 0, 'must hold more than spaces')
  .refine((text) => captionRows(text).length <= MAX_ROWS, `must fit in ${MAX_ROWS} rows of 32 columns once wrapped`);

/** A caption's media time (ms): up to a year of publishing. */
export const captionAtSchema = z
  .number()
  .int()
  .min(0)
  .max(366 * 86_400_000);

/** `POST /rest-api/stream/caption`: a caption for every push of the stream. */
export const captionRequestSchema = z.strictObject({
  streamName: streamNameSchema,
  text: captionTextSchema,
  /** false: interim text, written over by the next caption (a speech recogniser's guess while someone speaks). */
  final: wcsBoolean().optional(),
  /** The stream's media time (ms since it began publishing, as `stream/find` gives it) to place it at; now when absent. */
  at: wcsNumber(captionAtSchema).optional(),
});

/** A caption on a publisher's `captions` data channel: its text (final), or JSON `{text, final?, at?}`. */
const channelCaptionSchema = z.strictObject({
  text: captionTextSchema,
  final: z.boolean().optional(),
  at: captionAtSchema.optional(),
});

/** A data channel message as a caption; throws a 400 naming the field at fault. Text that starts with `{` is read as JSON. */
export function parseChannelCaption(message: string): z.infer<typeof channelCaptionSchema> {
  if (!message.startsWith('{')) return parseBody(channelCaptionSchema, { text: message });
  let body: unknown;
  try {
    body = JSON.parse(message);
  } catch {
    throw invalid('message', 'is not JSON (a message that starts with { must be {"text", "final"?, "at"?})');
  }
  return parseBody(channelCaptionSchema, body);
}

/** What a caption reached. */
export const captionResultSchema = z.strictObject({
  /** The stream's pushes that carry it. */
  pushes: z.number().int().nonnegative(),
  /** The stream's media time it was placed at (ms since the stream began publishing). */
  at: z.number().int().nonnegative(),
});
export type CaptionResult = z.infer<typeof captionResultSchema>;

/** How far back a caption's `at` may go: pushes behind still place it, the others on their next frame. */
const AT_BACK_MS = 10_000;
/** How far ahead: it waits in each push until the frames captured then. */
const AT_AHEAD_MS = 60_000;

/**
 * Where a caption goes on the media clock: at `at` (the stream's media time, ms from `originMs`)
 * when given, within 10 s back and 60 s ahead of now, else now, the moment it was received.
 */
export function placeCaption(originMs: number, nowMs: number, at?: number): { atMs: number; at: number } {
  const now = Math.max(0, Math.round(nowMs - originMs));
  if (at === undefined) return { atMs: nowMs, at: now };
  const mediaTime = `the stream's media time now (${now})`;
  if (at < now - AT_BACK_MS)
    throw invalid('at', `is ${now - at} ms before ${mediaTime}: a caption goes at most ${AT_BACK_MS / 1000} s back`);
  if (at > now + AT_AHEAD_MS)
    throw invalid('at', `is ${at - now} ms after ${mediaTime}: a caption goes at most ${AT_AHEAD_MS / 1000} s ahead`);
  return { atMs: originMs + at, at };
}
