import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, invalid, notFound } from '../core/errors.js';
import { MAX_OFFER_BYTES } from '../ingest/offer-check.js';
import { checkStreamName } from '../publishers/stream-name.js';
import type { ClientQuota } from '../security/client-quota.js';
import { routeAccess } from './guard.js';

/**
 * What WHIP and WHEP share: an SDP offer POSTed as `application/sdp`, answered `201` with the SDP
 * answer and the session's resource in `Location`; CORS open, so browser clients work from any
 * origin (a token, not the origin, is what authorizes).
 */
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
 * The offer of a POST: 415 unless sent as `application/sdp`, 400 naming the body when there is none
 * (told here, before the offer goes to the thread or node that holds the stream).
 */
function sdpOffer(request: FastifyRequest): string {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/sdp')
    throw new GatewayError('unsupported_media_type', 'the offer must be sent as Content-Type: application/sdp');
  const offer = typeof request.body === 'string' ? request.body : '';
  if (offer.trim() === '') throw invalid('body', 'must be an SDP offer; it is empty');
  return offer;
}

/** `201` with the answer; the session is `{base}/{streamName}/{id}`. */
function sessionCreated(
  reply: FastifyReply,
  base: string,
  streamName: string,
  session: { id: string; answer: string },
): FastifyReply {
  return reply
    .code(201)
    .header('content-type', 'application/sdp')
    .header('location', `${base}/${encodeURIComponent(streamName)}/${session.id}`)
    .header('etag', `"${session.id}"`)
    .send(session.answer);
}

/** One kind of SDP session resource: WHIP's publishes, WHEP's viewers. */
export interface SdpSessionKind {
  /** `/whip` or `/whep`: sessions are `{base}/{streamName}/{id}`. */
  base: string;
  /** What it is called in refusals: `WHIP session`. */
  label: string;
  /** Authorizes a POST or DELETE for the stream (its token, or the control key); throws 401 or 403. */
  authorize(stream: string, authorization: string | undefined, client: string): Promise<unknown>;
  /**
   * Opens the session. `release` gives back the client's share of `limit_sessions_per_client`: the
   * session holds it for its whole life, and calls it when it ends, however it ends.
   */
  open(stream: string, offer: string, client: string, release: () => void): Promise<{ id: string; answer: string }>;
  /** Ends session `id` of the stream (its DELETE); false when there is none. */
  end(stream: string, id: string): Promise<boolean>;
}

/**
 * The routes of an SDP session resource, as WHIP (RFC 9725) and WHEP define them alike: OPTIONS,
 * POST of an offer (201 with the answer and `Location`), DELETE of the session, and PATCH answered
 * 405 (candidates travel in the offer and answer only: no trickle ICE, no ICE restart). The routes
 * authorize themselves (`publish` access): a token, not the origin, is what authorizes.
 */
export function sdpSessionRoutes(app: FastifyInstance, quota: ClientQuota, kind: SdpSessionKind): void {
  const access = routeAccess('publish');
  const resource = `${kind.base}/:streamName/:id`;
  app.options(`${kind.base}/:streamName`, access, async (_request, reply) =>
    withCors(reply).code(204).header('accept-post', 'application/sdp').send(),
  );
  app.options(resource, access, async (_request, reply) =>
    withCors(reply).code(204).header('allow', 'DELETE, OPTIONS').send(),
  );

  app.post<{ Params: { streamName: string } }>(
    `${kind.base}/:streamName`,
    { ...access, bodyLimit: MAX_OFFER_BYTES },
    async (request, reply) => {
      withCors(reply);
      const offer = sdpOffer(request);
      const { streamName } = request.params;
      checkStreamName(streamName);
      await kind.authorize(streamName, request.headers.authorization, request.ip);
      const release = quota.acquire(request.ip, kind.label);
      let session;
      try {
        session = await kind.open(streamName, offer, request.ip, release);
      } catch (error) {
        release();
        throw error;
      }
      return sessionCreated(reply, kind.base, streamName, session);
    },
  );

  app.delete<{ Params: { streamName: string; id: string } }>(resource, access, async (request, reply) => {
    withCors(reply);
    await kind.authorize(request.params.streamName, request.headers.authorization, request.ip);
    if (!(await kind.end(request.params.streamName, request.params.id))) throw notFound(`no such ${kind.label}`);
    return reply.code(200).send();
  });

  app.patch(resource, access, async (_request, reply) =>
    withCors(reply).code(405).header('allow', 'DELETE, OPTIONS').send(),
  );
}
