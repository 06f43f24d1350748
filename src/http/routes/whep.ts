import type { FastifyInstance } from 'fastify';
import { authorizePublish, type AccessControl } from '../../security/access.js';
import type { MediaPlane } from '../../plane/plane.js';
import { bearerToken } from '../../security/bearer.js';
import { sdpSessionRoutes } from '../sdp-exchange.js';
import type { ViewerHolds } from '../viewer-holds.js';

/**
 * WHEP (the IETF WHEP draft): POST a viewer's SDP offer to `/whep/{streamName}`, get 201 with the
 * answer and the session resource in `Location`; DELETE on it ends the viewing. The viewer gets the
 * stream as it arrives (no transcoding). Watching needs the control key or a token with a view
 * grant (`Authorization: Bearer`), except on a gateway with no keys at all. A viewer holds its
 * client's share of `limit_sessions_per_client` from its offer until its session ends (`holds`),
 * as a publish does; one client address holds at most `limit_viewers_per_client` viewers of a stream.
 */
export function whepRoutes(app: FastifyInstance, plane: MediaPlane, access: AccessControl, holds: ViewerHolds): void {
  sdpSessionRoutes(app, access.quota, {
    base: '/whep',
    label: 'WHEP session',
    idName: 'viewerId',
    offer: {
      summary:
        'Watch a published stream over WHEP: its media as it arrives, not transcoded (needs webrtc_engine: ' +
        "mediasoup); 406 when the offer asks for video but receives none of the stream's video codec",
      description:
        'With keys set: `Authorization: Bearer` with the control key, or a publish key or JWT with a view grant ' +
        '(`view: true`) covering the stream.',
      failures: [400, 401, 403, 404, 406, 413, 415, 429, 503],
    },
    endFailures: [401, 403, 404],
    authorize: (stream, authorization, client) =>
      authorizePublish(access, { action: 'view', stream, token: bearerToken(authorization), client }),
    open: async (stream, offer, client, release) => {
      // The stream's own thread or node counts its viewers from this client against the limit.
      const viewer = await plane.view(stream, offer, client);
      holds.hold(viewer.id, release);
      return viewer;
    },
    end: async (stream, id) => {
      const ended = await plane.endView(stream, id);
      holds.ended(id);
      return ended;
    },
  });
}
