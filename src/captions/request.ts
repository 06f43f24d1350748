import { z } from 'zod';
import { streamNameSchema } from '../publishers/stream-name.js';
import { captionRows } from './cea608.js';
import { wcsBoolean } from '../validation.js';

/** A caption fills at most this many rows of 32 columns, as roll-up shows them. */
const MAX_ROWS = 4;

/** A caption's text: printable, and within four rows of 32 columns once wrapped. */
export const captionTextSchema = z
  .string()
  .min(1)
  .max(4 * 32 * 2)
  // eslint-disable-next-line no-control-regex -- what is refused is exactly the control characters
  .refine((text) => !/[\u0000-\u001f\u007f-\u009f]/.test(text), 'must hold no control characters (line breaks included: rows are wrapped)')
  .refine((text) => text.trim().length > 0, 'must hold more than spaces')
  .refine((text) => captionRows(text).length <= MAX_ROWS, `must fit in ${MAX_ROWS} rows of 32 columns once wrapped`);

/** `POST /rest-api/stream/caption`: a caption for every push of the stream. */
export const captionRequestSchema = z.strictObject({
  streamName: streamNameSchema,
  text: captionTextSchema,
  /** false: interim text, written over by the next caption (a speech recogniser's guess while someone speaks). */
  final: wcsBoolean().optional(),
});

/** What a caption reached. */
export const captionResultSchema = z.strictObject({
  /** The stream's pushes that carry it. */
  pushes: z.number().int().nonnegative(),
});
