import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { GatewayError, notFound } from '../core/errors.js';
import { MAX_OFFER_BYTES } from '../ingest/offer-check.js';
import { checkStreamName } from '../publishers/stream-name.js';
import type { ClientQuota } from '../security/client-quota.js';
import { routeAccess } from './guard.js';
import { binary, done, failures, type FailureStatus } from './openapi.js';

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

/** A session route's answers carry CORS headers, its refusals too: set before anything is checked. */
async function cors(_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  withCors(reply);
}

/** A POST's offer: 415 unless sent as `application/sdp`, told before its body is looked at. */
async function sdpContentType(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  withCors(reply);
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/sdp')
    throw new GatewayError('unsupported_media_type', 'the offer must be sent as Content-Type: application/sdp');
}

const EMPTY_OFFER = 'must be an SDP offer; it is empty';
/** The offer, 400 naming the body when there is none (before it goes to the thread or node that holds the stream). */
const offerSchema = z
  .string({ error: EMPTY_OFFER })
  .refine((offer) => offer.trim() !== '', EMPTY_OFFER)
  .describe('An SDP offer');
const streamParam = z.string().describe('The stream published or watched');

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
  /** What a session's id is called in its resource path: `sessionId`. */
  idName: string;
  /** What the API's description says of a POST of an offer, and what it may be refused with. */
  offer: { summary: string; description?: string; failures: FailureStatus[] };
  /** What a DELETE may be refused with. */
  endFailures: FailureStatus[];
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
  const api = app.withTypeProvider<ZodTypeProvider>();
  const access = routeAccess('publish');
  const resource = `${kind.base}/:streamName/:${kind.idName}`;
  const streamParams = z.strictObject({ streamName: streamParam });
  // The id's name is the kind's (`sessionId`): the handlers read it through `idOf`.
  const sessionParams = z.strictObject({ streamName: streamParam, [kind.idName]: z.string() }) as unknown as z.ZodType<
    { streamName: string } & Record<string, string>
  >;
  const session = (summary: string, response: Record<number, z.ZodType>) => ({
    ...access,
    preValidation: cors,
    schema: { summary, params: sessionParams, response },
  });
  const idOf = (params: Record<string, string>): string => params[kind.idName]!;

  const preflight = { 204: done('CORS preflight: the methods and content types taken') };
  api.options(
    `${kind.base}/:streamName`,
    { ...access, schema: { summary: `CORS preflight of a ${kind.label}`, params: streamParams, response: preflight } },
    async (_request, reply) => withCors(reply).code(204).header('accept-post', 'application/sdp').send(),
  );
  api.options(resource, session(`CORS preflight of a ${kind.label}`, preflight), async (_request, reply) =>
    withCors(reply).code(204).header('allow', 'DELETE, OPTIONS').send(),
  );

  api.post(
    `${kind.base}/:streamName`,
    {
      ...access,
      bodyLimit: MAX_OFFER_BYTES,
      preValidation: sdpContentType,
      schema: {
        summary: kind.offer.summary,
        ...(kind.offer.description ? { description: kind.offer.description } : {}),
        consumes: ['application/sdp'],
        params: streamParams,
        body: offerSchema,
        response: {
          201: {
            ...binary('The SDP answer; Location names the session', 'application/sdp'),
            headers: { Location: { type: 'string' } },
          },
          ...failures(...kind.offer.failures),
        },
      },
    },
    async (request, reply) => {
      withCors(reply);
      const offer = request.body;
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

  api.delete(
    resource,
    session(`End a ${kind.label}`, { 200: done('Ended'), ...failures(...kind.endFailures) }),
    async (request, reply) => {
      withCors(reply);
      await kind.authorize(request.params.streamName, request.headers.authorization, request.ip);
      if (!(await kind.end(request.params.streamName, idOf(request.params)))) throw notFound(`no such ${kind.label}`);
      return reply.code(200).send();
    },
  );

  api.patch(
    resource,
    session('Not taken: no trickle ICE, no ICE restart (405)', { 405: done('`Allow` lists the methods taken') }),
    async (_request, reply) => withCors(reply).code(405).header('allow', 'DELETE, OPTIONS').send(),
  );
}
