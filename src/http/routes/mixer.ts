import type { FastifyInstance } from 'fastify';
import { notFound } from '../../core/errors.js';
import {
  IGNORED_WCS_FIELDS,
  layoutOfClass,
  mixerAudioVideoSchema,
  mixerInputSchema,
  mixerLabelSchema,
  mixerListing,
  mixerLayoutSchema,
  mixerRemoveSchema,
  mixerStartupSchema,
  mixerTerminateSchema,
} from '../../mixers/requests.js';
import type { MixerCommands } from '../../plane/kept-mixers.js';
import type { MediaPlane } from '../../plane/plane.js';
import { parseBody } from '../../core/validation.js';
import { findAllSchema } from '../schemas.js';
import { routeAccess } from '../guard.js';

const CONTROL = routeAccess('control');

/**
 * Web Call Server's mixer API: `/rest-api/mixer/*`, JSON in and out. A mixer publishes a stream of
 * its own (`localStreamName`), pushed with `/rest-api/push/startup` like any other.
 */
export function mixerRoutes(app: FastifyInstance, plane: MediaPlane, mixers: MixerCommands): void {
  app.post('/rest-api/mixer/startup', CONTROL, async (request) => {
    const startup = parseBody(mixerStartupSchema, request.body);
    const { layout, mixerLayoutClass } = request.body as { layout?: unknown; mixerLayoutClass?: string };
    if (mixerLayoutClass !== undefined && layout === undefined && layoutOfClass(mixerLayoutClass) === undefined) {
      request.log.warn(
        { uri: startup.uri, mixerLayoutClass },
        'mixerLayoutClass names no layout the gateway can tell: the grid is used',
      );
    }
    return mixers.startup(startup);
  });

  app.post('/rest-api/mixer/add', CONTROL, async (request) => {
    const input = parseBody(mixerInputSchema, request.body);
    const ignored = IGNORED_WCS_FIELDS.filter(
      (field) => (request.body as Record<string, unknown>)[field] !== undefined,
    );
    if (ignored.length > 0)
      request.log.warn(
        { uri: input.uri, stream: input.remoteStreamName, ignored },
        "Web Call Server's fields taken, not used",
      );
    return mixers.add(input);
  });

  app.post('/rest-api/mixer/remove', CONTROL, async (request) =>
    mixers.remove(parseBody(mixerRemoveSchema, request.body)),
  );

  app.post('/rest-api/mixer/set_layout', CONTROL, async (request) =>
    mixers.layout(parseBody(mixerLayoutSchema, request.body)),
  );

  app.post('/rest-api/mixer/set_stream_label', CONTROL, async (request) =>
    mixers.label(parseBody(mixerLabelSchema, request.body)),
  );

  app.post('/rest-api/mixer/setAudioVideo', CONTROL, async (request) =>
    mixers.audioVideo(parseBody(mixerAudioVideoSchema, request.body)),
  );

  app.post('/rest-api/mixer/find_all', CONTROL, async (request) => {
    parseBody(findAllSchema, request.body);
    const [all, streams] = await Promise.all([plane.mixerFind(), plane.streams()]);
    if (all.length === 0) throw notFound('no mixers');
    const sessions = new Map(
      streams.filter((stream) => stream.state !== 'closed').map((stream) => [stream.name, stream.id]),
    );
    return all.map((mixer) => mixerListing(mixer, (stream) => sessions.get(stream)));
  });

  app.post('/rest-api/mixer/terminate', CONTROL, async (request, reply) => {
    await mixers.terminate(parseBody(mixerTerminateSchema, request.body).uri);
    return reply.code(200).send();
  });
}
