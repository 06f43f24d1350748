import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, invalid } from '../errors.js';

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

export function withCors(reply: FastifyReply): FastifyReply {
  return reply.headers(CORS);
}

/**
 * The offer of a POST: 415 unless sent as `application/sdp`, 400 naming the body when there is none
 * (told here, before the offer goes to the thread or node that holds the stream).
 */
export function sdpOffer(request: FastifyRequest): string {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/sdp') throw new GatewayError('unsupported_media_type', 'the offer must be sent as Content-Type: application/sdp');
  const offer = typeof request.body === 'string' ? request.body : '';
  if (offer.trim() === '') throw invalid('body', 'must be an SDP offer; it is empty');
  return offer;
}

/** `201` with the answer; the session is `{base}/{streamName}/{id}`. */
export function sessionCreated(reply: FastifyReply, base: string, streamName: string, session: { id: string; answer: string }): FastifyReply {
  return reply
    .code(201)
    .header('content-type', 'application/sdp')
    .header('location', `${base}/${encodeURIComponent(streamName)}/${session.id}`)
    .header('etag', `"${session.id}"`)
    .send(session.answer);
}
