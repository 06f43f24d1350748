import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { notFound } from '../../core/errors.js';
import type { MediaPlane } from '../../plane/plane.js';
import type { PushCommands } from '../../control/commands.js';
import { findAllSchema, findSchema, mediaSessionSchema } from '../schemas.js';
import { soundOnSchema, startupSchema } from '../../pushes/requests.js';
import { checkReportSchema, checkRequestSchema, type CheckReport, type CheckRequest } from '../../links/check.js';
import { pushInfoSchema } from '../../pushes/info.js';
import { done, failures } from '../openapi.js';
import { routeAccess } from '../guard.js';

const CONTROL = routeAccess('control');

/**
 * Web Call Server's transponder API: `/rest-api/push/*`, JSON in and out. `find` reads the plane;
 * the commands go through `pushes` (`control/commands.ts`), which keeps what was started
 * (`control/push-keeper.ts`) when the gateway keeps pushes. The body is checked here, once, by
 * the route's schema: what goes on is its typed output.
 */
export function pushRoutes(
  app: FastifyInstance,
  plane: MediaPlane,
  pushes: PushCommands,
  check: (request: CheckRequest, caller: string) => Promise<CheckReport>,
): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  /** A command on one transponder: 200 with no body, as Web Call Server. */
  const command = <B extends z.ZodType = typeof mediaSessionSchema>(summary: string, body?: B) => ({
    ...CONTROL,
    schema: {
      summary,
      body: body ?? (mediaSessionSchema as unknown as B),
      response: { 200: done(), ...failures(400, 401, 404) },
    },
  });

  // Answered where it arrives: nothing of a stream is involved.
  api.post(
    '/rest-api/push/check',
    {
      ...CONTROL,
      schema: {
        summary:
          'Connect to a destination as a push would, sending no media: reachable, application accepted, key accepted',
        body: checkRequestSchema,
        response: { 200: checkReportSchema.describe('How far the check got'), ...failures(400, 401) },
      },
    },
    async (request) => check(request.body, request.ip),
  );

  api.post(
    '/rest-api/push/startup',
    {
      ...CONTROL,
      schema: {
        summary: 'Start republishing a stream to an RTMP, RTMPS or SRT destination, or recording it (record://)',
        body: startupSchema,
        response: {
          200: pushInfoSchema.describe('Running'),
          ...failures(400, 401, 403, 404, 409, 429, 500, 503),
        },
      },
    },
    async (request) => pushes.startup(request.body, request.apiKeyId ? `rest:${request.apiKeyId}` : 'rest'),
  );

  api.post(
    '/rest-api/push/find',
    {
      ...CONTROL,
      schema: {
        summary: 'Transponders by stream name or destination',
        body: findSchema,
        response: { 200: z.array(pushInfoSchema).describe('Matching transponders'), ...failures(400, 401, 404) },
      },
    },
    async (request) => {
      const found = await plane.find(request.body);
      if (found.length === 0) throw notFound('no transponder matches');
      return found;
    },
  );

  api.post(
    '/rest-api/push/find_all',
    {
      ...CONTROL,
      schema: {
        summary: 'Every transponder',
        body: findAllSchema,
        response: { 200: z.array(pushInfoSchema).describe('Every transponder'), ...failures(400, 401, 404) },
      },
    },
    async () => {
      const all = await plane.find({});
      if (all.length === 0) throw notFound('no transponders');
      return all;
    },
  );

  api.post('/rest-api/push/terminate', command('Stop a transponder'), async (request, reply) => {
    await pushes.terminate(request.body.mediaSessionId);
    return reply.code(200).send();
  });

  // Audio commands, applied to the live output without reconnecting: 200 with no body, as Web Call Server.
  api.post('/rest-api/push/mute', command("Silence a transponder's audio"), async (request, reply) => {
    await pushes.setMuted(request.body.mediaSessionId, true);
    return reply.code(200).send();
  });

  api.post('/rest-api/push/unmute', command('Give a transponder its audio back'), async (request, reply) => {
    await pushes.setMuted(request.body.mediaSessionId, false);
    return reply.code(200).send();
  });

  api.post(
    '/rest-api/push/sound_on',
    command("Play a WAV file into a transponder's audio", soundOnSchema),
    async (request, reply) => {
      const { mediaSessionId, ...sound } = request.body;
      await pushes.soundOn(mediaSessionId, sound);
      return reply.code(200).send();
    },
  );

  api.post('/rest-api/push/sound_off', command('Stop the sound playing'), async (request, reply) => {
    await pushes.soundOff(request.body.mediaSessionId);
    return reply.code(200).send();
  });
}
