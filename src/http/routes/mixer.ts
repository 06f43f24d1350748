import type { FastifyInstance } from 'fastify';
import { notFound } from '../../errors.js';
import {
  mixerAudioVideoSchema,
  mixerInputSchema,
  mixerLabelSchema,
  mixerLayoutSchema,
  mixerRemoveSchema,
  mixerStartupSchema,
  mixerTerminateSchema,
} from '../../mixers/requests.js';
import type { MediaPlane } from '../../plane/plane.js';
import { parseBody } from '../../validation.js';
import { findAllSchema } from '../schemas.js';
import { routeAccess } from '../guard.js';

const CONTROL = routeAccess('control');

/**
 * Web Call Server's mixer API: `/rest-api/mixer/*`, JSON in and out. A mixer publishes a stream of
 * its own (`localStreamName`), pushed with `/rest-api/push/startup` like any other.
 */
export function mixerRoutes(app: FastifyInstance, plane: MediaPlane): void {
  app.post('/rest-api/mixer/startup', CONTROL, async (request) => plane.mixerStartup(parseBody(mixerStartupSchema, request.body)));

  app.post('/rest-api/mixer/add', CONTROL, async (request) => plane.mixerAdd(parseBody(mixerInputSchema, request.body)));

  app.post('/rest-api/mixer/remove', CONTROL, async (request) => plane.mixerRemove(parseBody(mixerRemoveSchema, request.body)));

  app.post('/rest-api/mixer/set_layout', CONTROL, async (request) => plane.mixerLayout(parseBody(mixerLayoutSchema, request.body)));

  app.post('/rest-api/mixer/set_stream_label', CONTROL, async (request) => plane.mixerLabel(parseBody(mixerLabelSchema, request.body)));

  app.post('/rest-api/mixer/setAudioVideo', CONTROL, async (request) => plane.mixerAudioVideo(parseBody(mixerAudioVideoSchema, request.body)));

  app.post('/rest-api/mixer/find_all', CONTROL, async (request) => {
    parseBody(findAllSchema, request.body);
    const all = await plane.mixerFind();
    if (all.length === 0) throw notFound('no mixers');
    return all;
  });

  app.post('/rest-api/mixer/terminate', CONTROL, async (request, reply) => {
    await plane.mixerTerminate(parseBody(mixerTerminateSchema, request.body).uri);
    return reply.code(200).send();
  });
}
