import type { FastifyInstance } from 'fastify';
import { authorizePublish, type AccessControl } from '../../security/access.js';
import type { MediaPlane } from '../../plane/plane.js';
import { bearerToken } from '../../security/bearer.js';
import { sdpSessionRoutes } from '../sdp-exchange.js';

/**
 * WHIP (RFC 9725): POST an SDP offer to `/whip/{streamName}`, get 201 with the answer and the
 * session resource in `Location`; DELETE on that resource ends the publish (also after the client
 * closed its peer connection first). When publishing needs a token, the token is what authorizes,
 * `Authorization: Bearer` on POST and DELETE alike. A publish holds its client's share of
 * `limit_sessions_per_client` until it closes.
 */
export function whipRoutes(app: FastifyInstance, plane: MediaPlane, access: AccessControl): void {
  sdpSessionRoutes(app, access.quota, {
    base: '/whip',
    label: 'WHIP session',
    idName: 'sessionId',
    offer: { summary: 'Publish over WHIP (RFC 9725)', failures: [400, 401, 409, 413, 415, 429, 503] },
    endFailures: [401, 404],
    authorize: (stream, authorization, client) =>
      authorizePublish(access, { stream, token: bearerToken(authorization), client }),
    open: (stream, offer, client, release) => plane.publish(stream, offer, { closed: release }, client),
    end: (stream, id) => plane.unpublish(stream, id, 'WHIP session deleted'),
  });
}
