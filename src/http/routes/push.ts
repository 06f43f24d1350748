import type { FastifyInstance } from 'fastify';
import { notFound } from '../../core/errors.js';
import type { MediaPlane } from '../../plane/plane.js';
import type { PushCommands } from '../../plane/kept-pushes.js';
import { findAllSchema, findSchema, mediaSessionSchema } from '../schemas.js';
import { soundOnSchema, startupSchema } from '../../pushes/requests.js';
import { checkRequestSchema, type CheckReport, type CheckRequest } from '../../outputs/check.js';
import { parseBody } from '../../core/validation.js';
import { routeAccess } from '../guard.js';

const CONTROL = routeAccess('control');

/**
 * Web Call Server's transponder API: `/rest-api/push/*`, JSON in and out. `find` reads the plane;
 * the commands go through `pushes`, which keeps what was started (`kept-pushes.ts`) when the
 * gateway keeps pushes.
 */
export function pushRoutes(
  app: FastifyInstance,
  plane: MediaPlane,
  pushes: PushCommands,
  check: (request: CheckRequest, caller: string) => Promise<CheckReport>,
): void {
  // Answered where it arrives: nothing of a stream is involved.
  app.post('/rest-api/push/check', CONTROL, async (request) =>
    check(parseBody(checkRequestSchema, request.body), request.ip),
  );

  app.post('/rest-api/push/startup', CONTROL, async (request) => {
    const body = parseBody(startupSchema, request.body);
    return pushes.startup(body, request.apiKeyId ? `rest:${request.apiKeyId}` : 'rest');
  });

  app.post('/rest-api/push/find', CONTROL, async (request) => {
    const filter = parseBody(findSchema, request.body);
    const found = await plane.find(filter);
    if (found.length === 0) throw notFound('no transponder matches');
    return found;
  });

  app.post('/rest-api/push/find_all', CONTROL, async (request) => {
    parseBody(findAllSchema, request.body);
    const all = await plane.find({});
    if (all.length === 0) throw notFound('no transponders');
    return all;
  });

  app.post('/rest-api/push/terminate', CONTROL, async (request, reply) => {
    const { mediaSessionId } = parseBody(mediaSessionSchema, request.body);
    await pushes.terminate(mediaSessionId);
    return reply.code(200).send();
  });

  // Audio commands, applied to the live output without reconnecting: 200 with no body, as Web Call Server.
  app.post('/rest-api/push/mute', CONTROL, async (request, reply) => {
    await pushes.setMuted(parseBody(mediaSessionSchema, request.body).mediaSessionId, true);
    return reply.code(200).send();
  });

  app.post('/rest-api/push/unmute', CONTROL, async (request, reply) => {
    await pushes.setMuted(parseBody(mediaSessionSchema, request.body).mediaSessionId, false);
    return reply.code(200).send();
  });

  app.post('/rest-api/push/sound_on', CONTROL, async (request, reply) => {
    const { mediaSessionId, ...sound } = parseBody(soundOnSchema, request.body);
    await pushes.soundOn(mediaSessionId, sound);
    return reply.code(200).send();
  });

  app.post('/rest-api/push/sound_off', CONTROL, async (request, reply) => {
    await pushes.soundOff(parseBody(mediaSessionSchema, request.body).mediaSessionId);
    return reply.code(200).send();
  });
}
