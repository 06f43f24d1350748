import type { FastifyInstance, FastifyReply } from 'fastify';
import { authorizePublish, type AccessControl } from '../../security/access.js';
import { GatewayError, notFound } from '../../errors.js';
import { MAX_OFFER_BYTES } from '../../ingest/offer-check.js';
import { offerError } from '../../ingest/sdp.js';
import type { MediaPlane } from '../../plane/plane.js';
import { checkStreamName } from '../../publishers/stream-name.js';
import { bearerToken } from '../../security/bearer.js';
import { routeAccess } from '../guard.js';

/** The routes authorize with the publish token themselves. */
const PUBLISH = routeAccess('publish');

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, DELETE, PATCH, OPTIONS',
  'access-control-allow-headers': 'content-type, authorization, if-match',
  'access-control-expose-headers': 'location, link, etag, accept-patch, accept-post, www-authenticate, retry-after',
};

function withCors(reply: FastifyReply): FastifyReply {
  return reply.headers(CORS);
}

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
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/sdp') {
      throw new GatewayError('unsupported_media_type', 'the offer must be sent as Content-Type: application/sdp');
    }
    const { streamName } = request.params;
    checkStreamName(streamName);
    await authorize(streamName, request.headers.authorization, request.ip);
    const offer = typeof request.body === 'string' ? request.body : '';
    const release = quota.acquire(request.ip, 'WHIP session');
    let published;
    try {
      published = await plane.publish(streamName, offer, { closed: release }, request.ip);
    } catch (error) {
      release();
      throw offerError(error, 'offer');
    }
    return reply
      .code(201)
      .header('content-type', 'application/sdp')
      .header('location', `/whip/${encodeURIComponent(streamName)}/${published.id}`)
      .header('etag', `"${published.id}"`)
      .send(published.answer);
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
