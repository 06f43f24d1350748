import type { FastifyInstance } from 'fastify';
import { authorizePublish, type AccessControl } from '../../security/access.js';
import { notFound } from '../../errors.js';
import { MAX_OFFER_BYTES } from '../../ingest/offer-check.js';
import type { MediaPlane } from '../../plane/plane.js';
import { checkStreamName } from '../../publishers/stream-name.js';
import { bearerToken } from '../../security/bearer.js';
import { routeAccess } from '../guard.js';
import { sdpOffer, sessionCreated, withCors } from '../sdp-exchange.js';
import type { ViewerHolds } from '../viewer-holds.js';

/** The routes authorize with the control key or a view token themselves. */
const VIEW = routeAccess('publish');

/**
 * WHEP (the IETF WHEP draft): POST a viewer's SDP offer to `/whep/{streamName}`, get 201 with the
 * answer and the session resource in `Location`; DELETE on it ends the viewing. The viewer gets the
 * stream as it arrives (no transcoding). Watching needs the control key or a token with a view
 * grant (`Authorization: Bearer`), except on a gateway with no keys at all. Candidates travel in
 * the offer and answer only (PATCH answers 405). A viewer counts against its client's
 * `limit_sessions_per_client` from its offer until its session ends (`holds`).
 */
export function whepRoutes(app: FastifyInstance, plane: MediaPlane, access: AccessControl, holds: ViewerHolds): void {
  const { quota } = access;
  const authorize = (stream: string, authorization: string | undefined, client: string): Promise<unknown> =>
    authorizePublish(access, { action: 'view', stream, token: bearerToken(authorization), client });

  app.options('/whep/:streamName', VIEW, async (_request, reply) => withCors(reply).code(204).header('accept-post', 'application/sdp').send());
  app.options('/whep/:streamName/:viewerId', VIEW, async (_request, reply) => withCors(reply).code(204).header('allow', 'DELETE, OPTIONS').send());

  app.post<{ Params: { streamName: string } }>('/whep/:streamName', { ...VIEW, bodyLimit: MAX_OFFER_BYTES }, async (request, reply) => {
    withCors(reply);
    const offer = sdpOffer(request);
    const { streamName } = request.params;
    checkStreamName(streamName);
    await authorize(streamName, request.headers.authorization, request.ip);
    const release = quota.acquire(request.ip, 'WHEP session');
    let viewer;
    try {
      viewer = await plane.view(streamName, offer);
    } catch (error) {
      release();
      throw error;
    }
    holds.hold(viewer.id, release);
    return sessionCreated(reply, '/whep', streamName, viewer);
  });

  app.delete<{ Params: { streamName: string; viewerId: string } }>('/whep/:streamName/:viewerId', VIEW, async (request, reply) => {
    withCors(reply);
    await authorize(request.params.streamName, request.headers.authorization, request.ip);
    const ended = await plane.endView(request.params.streamName, request.params.viewerId);
    holds.ended(request.params.viewerId);
    if (!ended) throw notFound('no such WHEP session');
    return reply.code(200).send();
  });

  app.patch('/whep/:streamName/:viewerId', VIEW, async (_request, reply) => withCors(reply).code(405).header('allow', 'DELETE, OPTIONS').send());
}
