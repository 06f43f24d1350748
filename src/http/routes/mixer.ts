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
import type { MixerCommands } from '../../plane/kept-mixers.js';
import type { MediaPlane } from '../../plane/plane.js';
import { parseBody } from '../../validation.js';
import { findAllSchema } from '../schemas.js';
import { routeAccess } from '../guard.js';

const CONTROL = routeAccess('control');

/**
 * Web Call Server's mixer API: `/rest-api/mixer/*`, JSON in and out. A mixer publishes a stream of
 * its own (`localStreamName`), pushed with `/rest-api/push/startup` like any other.
 */
export function mixerRoutes(app: FastifyInstance, plane: MediaPlane, mixers: MixerCommands): void {
  app.post('/rest-api/mixer/startup', CONTROL, async (request) => mixers.startup(parseBody(mixerStartupSchema, request.body)));

  app.post('/rest-api/mixer/add', CONTROL, async (request) => mixers.add(parseBody(mixerInputSchema, request.body)));

  app.post('/rest-api/mixer/remove', CONTROL, async (request) => mixers.remove(parseBody(mixerRemoveSchema, request.body)));

  app.post('/rest-api/mixer/set_layout', CONTROL, async (request) => mixers.layout(parseBody(mixerLayoutSchema, request.body)));

  app.post('/rest-api/mixer/set_stream_label', CONTROL, async (request) => mixers.label(parseBody(mixerLabelSchema, request.body)));

  app.post('/rest-api/mixer/setAudioVideo', CONTROL, async (request) => mixers.audioVideo(parseBody(mixerAudioVideoSchema, request.body)));

  app.post('/rest-api/mixer/find_all', CONTROL, async (request) => {
    parseBody(findAllSchema, request.body);
    const all = await plane.mixerFind();
    if (all.length === 0) throw notFound('no mixers');
    return all;
  });

  app.post('/rest-api/mixer/terminate', CONTROL, async (request, reply) => {
    await mixers.terminate(parseBody(mixerTerminateSchema, request.body).uri);
    return reply.code(200).send();
  });
}
