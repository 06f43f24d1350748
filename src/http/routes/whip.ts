import type { FastifyInstance } from 'fastify';
import { authorizePublish, type AccessControl } from '../../security/access.js';
import { notFound } from '../../errors.js';
import { MAX_OFFER_BYTES } from '../../ingest/offer-check.js';
import type { MediaPlane } from '../../plane/plane.js';
import { checkStreamName } from '../../publishers/stream-name.js';
import { bearerToken } from '../../security/bearer.js';
import { routeAccess } from '../guard.js';
import { sdpOffer, sessionCreated, withCors } from '../sdp-exchange.js';

/** The routes authorize with the publish token themselves. */
const PUBLISH = routeAccess('publish');

/**
 * WHIP (RFC 9725): POST an SDP offer to `/whip/{streamName}`, get 201 with the answer and the
 * session resource in `Location`; DELETE on that resource ends the publish. Candidates travel in
 * the offer and answer only: trickle ICE and ICE restarts are not offered (PATCH answers 405).
 * CORS stays open for browser WHIP clients: when publishing needs a token, the token is what
 * authorizes, `Authorization: Bearer` on POST and DELETE alike.
 */
export function whipRoutes(app: FastifyInstance, plane: MediaPlane, access: AccessControl): void {
  const { quota } = access;
  const authorize = (stream: string, authorization: string | undefined, client: string): Promise<unknown> =>
    authorizePublish(access, { stream, token: bearerToken(authorization), client });

  app.options('/whip/:streamName', PUBLISH, async (_request, reply) =>
    withCors(reply).code(204).header('accept-post', 'application/sdp').send(),
  );
  app.options('/whip/:streamName/:sessionId', PUBLISH, async (_request, reply) =>
    withCors(reply).code(204).header('allow', 'DELETE, OPTIONS').send(),
  );

  app.post<{ Params: { streamName: string } }>('/whip/:streamName', { ...PUBLISH, bodyLimit: MAX_OFFER_BYTES }, async (request, reply) => {
    withCors(reply);
    const offer = sdpOffer(request);
    const { streamName } = request.params;
    checkStreamName(streamName);
    await authorize(streamName, request.headers.authorization, request.ip);
    const release = quota.acquire(request.ip, 'WHIP session');
    let published;
    try {
      published = await plane.publish(streamName, offer, { closed: release }, request.ip);
    } catch (error) {
      release();
      throw error;
    }
    return sessionCreated(reply, '/whip', streamName, published);
  });

  app.delete<{ Params: { streamName: string; sessionId: string } }>('/whip/:streamName/:sessionId', PUBLISH, async (request, reply) => {
    withCors(reply);
    await authorize(request.params.streamName, request.headers.authorization, request.ip);
    if (!(await plane.unpublish(request.params.streamName, request.params.sessionId, 'WHIP session deleted'))) throw notFound('no such WHIP session');
    return reply.code(200).send();
  });

  app.patch('/whip/:streamName/:sessionId', PUBLISH, async (_request, reply) =>
    withCors(reply).code(405).header('allow', 'DELETE, OPTIONS').send(),
  );
}
