import type { FastifyInstance } from 'fastify';
import { notFound } from '../../errors.js';
import type { TransponderService } from '../../transponders/service.js';
import { findAllSchema, findSchema, mediaSessionSchema, startupSchema } from '../schemas.js';
import { parseBody } from '../validation.js';

/** Web Call Server's transponder API: `/rest-api/push/*`, JSON in and out. */
export function pushRoutes(app: FastifyInstance, transponders: TransponderService): void {
  app.post('/rest-api/push/startup', async (request) => {
    const body = parseBody(startupSchema, request.body);
    return (await transponders.startup(body)).toJSON();
  });

  app.post('/rest-api/push/find', async (request) => {
    const filter = parseBody(findSchema, request.body);
    const found = transponders.find(filter);
    if (found.length === 0) throw notFound('no transponder matches');
    return found.map((t) => t.toJSON());
  });

  app.post('/rest-api/push/find_all', async (request) => {
    parseBody(findAllSchema, request.body);
    const all = transponders.all();
    if (all.length === 0) throw notFound('no transponders');
    return all.map((t) => t.toJSON());
  });

  app.post('/rest-api/push/terminate', async (request, reply) => {
    const { mediaSessionId } = parseBody(mediaSessionSchema, request.body);
    await transponders.terminate(mediaSessionId);
    return reply.code(200).send();
  });
}
