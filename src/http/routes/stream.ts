import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { notFound } from '../../core/errors.js';
import type { MediaPlane } from '../../plane/plane.js';
import { findAllSchema, streamSchema } from '../schemas.js';
import { binary, failures } from '../openapi.js';
import { streamJsonSchema } from '../../publishers/description.js';
import type { SnapshotQueue } from '../snapshot-queue.js';
import type { Thumbnailer } from '../../viewers/thumbnails.js';
import { streamNameSchema } from '../../publishers/stream-name.js';
import { routeAccess } from '../guard.js';
import { captionRequestSchema, captionResultSchema } from '../../captions/request.js';
import type { CaptionFlood } from '../../captions/flood.js';

const CONTROL = routeAccess('control');

/** Other parameters are left alone: an image's URL often carries one of its own (a cache buster). */
const thumbnailQuerySchema = z.object({ streamName: streamNameSchema.describe('The stream') });

/**
 * Web Call Server's stream API: what is being published, a picture of it (a snapshot when asked, the latest
 * thumbnail); and captions in its pushes.
 */
export function streamRoutes(
  app: FastifyInstance,
  plane: MediaPlane,
  snapshots: SnapshotQueue,
  thumbnails: Thumbnailer,
  captions: CaptionFlood,
): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post(
    '/rest-api/stream/find',
    {
      ...CONTROL,
      schema: {
        summary: 'A publishing stream and its figures',
        body: streamSchema,
        response: { 200: z.array(streamJsonSchema).describe('The stream'), ...failures(400, 401, 404) },
      },
    },
    async (request) => {
      const { name } = request.body;
      const found = await plane.streams(name);
      if (found.length === 0) throw notFound(`stream ${name} is not published`);
      return found;
    },
  );

  api.post(
    '/rest-api/stream/find_all',
    {
      ...CONTROL,
      schema: {
        summary: 'Every publishing stream',
        body: findAllSchema,
        response: { 200: z.array(streamJsonSchema).describe('Every stream'), ...failures(400, 401, 404) },
      },
    },
    async () => {
      const all = await plane.streams();
      if (all.length === 0) throw notFound('no streams');
      return all;
    },
  );

  // A caption in every push of the stream (CEA-608 in the H.264 sent).
  api.post(
    '/rest-api/stream/caption',
    {
      ...CONTROL,
      schema: {
        summary:
          'A caption (CEA-608 roll-up, in the H.264 of every push of the stream, on the frames captured when it ' +
          'came or at `at`)',
        body: captionRequestSchema,
        response: { 200: captionResultSchema.describe('How many pushes carry it'), ...failures(400, 401, 404) },
      },
    },
    async (request) => {
      const { streamName, text, final, at } = request.body;
      captions.take(request.ip);
      return plane.caption(streamName, text, final, at);
    },
  );

  // The latest keyframe, decoded when asked, within what snapshots may spend.
  api.post(
    '/rest-api/stream/snapshot',
    {
      ...CONTROL,
      schema: {
        summary: "The stream's latest keyframe as a JPEG",
        body: streamSchema,
        response: { 200: binary('The picture', 'image/jpeg'), ...failures(400, 401, 404, 500, 503) },
      },
    },
    async (request, reply) => {
      const jpeg = await snapshots.snapshot(request.body.name);
      return reply.type('image/jpeg').header('cache-control', 'no-store').send(jpeg);
    },
  );

  // The latest thumbnail taken every thumbnail_interval_s: nothing decoded for the request.
  api.get(
    '/rest-api/stream/thumbnail',
    {
      ...CONTROL,
      schema: {
        summary: "The stream's latest thumbnail (JPEG), taken every `thumbnail_interval_s`",
        description:
          '`Last-Modified` says when it was taken. A stream that ended keeps its last thumbnail while its file ' +
          'stays in `thumbnail_dir`. 404 when thumbnails are off or the stream has none.',
        querystring: thumbnailQuerySchema,
        response: { 200: binary('The picture', 'image/jpeg'), ...failures(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { streamName } = request.query;
      if (!thumbnails.enabled) throw notFound(`stream ${streamName} has no thumbnail: thumbnail_interval_s is 0`);
      const thumbnail = await thumbnails.latest(streamName);
      if (!thumbnail) throw notFound(`stream ${streamName} has no thumbnail yet`, 'streamName');
      return reply
        .type('image/jpeg')
        .header('cache-control', 'no-cache')
        .header('last-modified', thumbnail.at.toUTCString())
        .send(thumbnail.jpeg);
    },
  );
}
