import { z } from 'zod';
import { count, pixels, seconds } from '../fields.js';

/**
 * Thumbnails: a JPEG of each publishing stream's latest keyframe written every interval
 * (`viewers/thumbnails.ts`), served by `GET /rest-api/stream/thumbnail` and shown by the console.
 */
export const thumbnailFields = {
  thumbnail_interval_s: seconds(
    0,
    86_400,
    0,
    'a thumbnail (JPEG of the latest keyframe) of each publishing stream is written this often (s); 0: none; ' +
      'a stream whose keyframe has not changed is not decoded again',
  ),
  thumbnail_streams: z
    .array(z.string().min(1).max(128))
    .max(1000)
    .default([])
    .describe('the streams that get thumbnails; empty: every stream'),
  thumbnail_dir: z
    .string()
    .min(1)
    .default('thumbnails')
    .describe("where thumbnails are written (relative to the gateway's folder)"),
  thumbnail_naming: z
    .enum(['latest', 'numbered'])
    .default('latest')
    .describe(
      '`latest`: one `<stream>.jpg` per stream, replaced whole (written aside, then renamed); ' +
        '`numbered`: `<stream>-<UTC, 20261124T102233Z>.jpg`, the oldest deleted beyond `thumbnail_keep`',
    ),
  thumbnail_width: pixels(
    16,
    8192,
    320,
    'a thumbnail is at most this wide (px), its height in proportion; a narrower picture keeps its size',
  ),
  thumbnail_keep: count(1, 100_000, 100, 'numbered thumbnails kept per stream (the oldest are deleted)'),
  thumbnail_upload: z
    .boolean()
    .default(false)
    .describe(
      "also put each thumbnail in `record_s3`'s bucket, at `<prefix>thumbnails/<file>` (numbered ones beyond " +
        '`thumbnail_keep` deleted there too)',
    ),
};

/** Thumbnails go to the bucket recordings go to: there must be one. */
export function checkThumbnailUpload(c: { thumbnail_upload: boolean; record_s3: unknown }, ctx: z.RefinementCtx): void {
  if (c.thumbnail_upload && c.record_s3 === null)
    ctx.addIssue({
      code: 'custom',
      path: ['thumbnail_upload'],
      message: 'needs record_s3 (the bucket to put them in)',
    });
}
