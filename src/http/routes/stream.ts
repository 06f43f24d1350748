import type { FastifyInstance } from 'fastify';
import { notFound } from '../../core/errors.js';
import type { MediaPlane } from '../../plane/plane.js';
import { findAllSchema, streamSchema } from '../schemas.js';
import { parseBody } from '../../core/validation.js';
import type { SnapshotQueue } from '../snapshot-queue.js';
import { routeAccess } from '../guard.js';
import { captionRequestSchema } from '../../captions/request.js';
import type { CaptionFlood } from '../../captions/flood.js';

const CONTROL = routeAccess('control');

/** Web Call Server's stream API: what is being published, and a picture of it; and captions in its pushes. */
export function streamRoutes(
  app: FastifyInstance,
  plane: MediaPlane,
  snapshots: SnapshotQueue,
  captions: CaptionFlood,
): void {
  app.post('/rest-api/stream/find', CONTROL, async (request) => {
    const { name } = parseBody(streamSchema, request.body);
    const found = await plane.streams(name);
    if (found.length === 0) throw notFound(`stream ${name} is not published`);
    return found;
  });

  app.post('/rest-api/stream/find_all', CONTROL, async (request) => {
    parseBody(findAllSchema, request.body);
    const all = await plane.streams();
    if (all.length === 0) throw notFound('no streams');
    return all;
  });

  // A caption in every push of the stream (CEA-608 in the H.264 sent).
  app.post('/rest-api/stream/caption', CONTROL, async (request) => {
    const { streamName, text, final, at } = parseBody(captionRequestSchema, request.body);
    captions.take(request.ip);
    return plane.caption(streamName, text, final, at);
  });

  // The latest keyframe, decoded when asked, within what snapshots may spend.
  app.post('/rest-api/stream/snapshot', CONTROL, async (request, reply) => {
    const { name } = parseBody(streamSchema, request.body);
    const jpeg = await snapshots.snapshot(name);
    return reply.type('image/jpeg').header('cache-control', 'no-store').send(jpeg);
  });
}
