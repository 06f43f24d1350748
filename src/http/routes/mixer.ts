import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { notFound } from '../../core/errors.js';
import {
  IGNORED_WCS_FIELDS,
  layoutOfClass,
  mixerAudioVideoSchema,
  mixerInfoSchema,
  mixerInputSchema,
  mixerLabelSchema,
  mixerListing,
  mixerListingSchema,
  mixerLayoutSchema,
  mixerRemoveSchema,
  mixerStartupSchema,
  mixerTerminateSchema,
} from '../../mixers/requests.js';
import type { MixerCommands } from '../../control/commands.js';
import type { MediaPlane } from '../../plane/plane.js';
import { done, failures } from '../openapi.js';
import { findAllSchema } from '../schemas.js';
import { routeAccess } from '../guard.js';

const CONTROL = routeAccess('control');

/** The fields of a request's body as it was sent: its schema drops those the gateway takes and does not use. */
const sent = new WeakMap<FastifyRequest, Record<string, unknown>>();
const keepSent = async (request: FastifyRequest): Promise<void> => {
  sent.set(request, (request.body ?? {}) as Record<string, unknown>);
};

const theMixer = (description: string) => ({ 200: mixerInfoSchema.describe(description) });

/**
 * Web Call Server's mixer API: `/rest-api/mixer/*`, JSON in and out. A mixer publishes a stream of
 * its own (`localStreamName`), pushed with `/rest-api/push/startup` like any other. Each body is
 * checked here, once, by its route's schema; the commands (`control/commands.ts`) take its typed output.
 */
export function mixerRoutes(app: FastifyInstance, plane: MediaPlane, mixers: MixerCommands): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  /** A change to a running mixer, answered with the mixer. */
  const change = <B extends z.ZodType>(summary: string, body: B) => ({
    ...CONTROL,
    schema: { summary, body, response: { ...theMixer('The mixer'), ...failures(400, 401, 404) } },
  });

  api.post(
    '/rest-api/mixer/startup',
    {
      ...CONTROL,
      preValidation: keepSent,
      schema: {
        summary:
          'Start a mixer: one picture and one sound made from several streams, published as a stream of its own ' +
          '(localStreamName)',
        body: mixerStartupSchema,
        response: { ...theMixer('Running'), ...failures(400, 401, 409, 503) },
      },
    },
    async (request) => {
      const startup = request.body;
      const { layout, mixerLayoutClass } = sent.get(request) as { layout?: unknown; mixerLayoutClass?: string };
      if (mixerLayoutClass !== undefined && layout === undefined && layoutOfClass(mixerLayoutClass) === undefined) {
        request.log.warn(
          { uri: startup.uri, mixerLayoutClass },
          'mixerLayoutClass names no layout the gateway can tell: the grid is used',
        );
      }
      return mixers.startup(startup);
    },
  );

  api.post(
    '/rest-api/mixer/add',
    {
      ...CONTROL,
      preValidation: keepSent,
      schema: {
        summary: 'Add a publishing stream to a mixer, after the others or at a slot',
        body: mixerInputSchema,
        response: { ...theMixer('The mixer'), ...failures(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const input = request.body;
      const body = sent.get(request)!;
      const ignored = IGNORED_WCS_FIELDS.filter((field) => body[field] !== undefined);
      if (ignored.length > 0)
        request.log.warn(
          { uri: input.uri, stream: input.remoteStreamName, ignored },
          "Web Call Server's fields taken, not used",
        );
      return mixers.add(input);
    },
  );

  api.post('/rest-api/mixer/remove', change('Remove a stream from a mixer', mixerRemoveSchema), async (request) =>
    mixers.remove(request.body),
  );

  api.post(
    '/rest-api/mixer/set_layout',
    change("Change a mixer's layout while it runs", mixerLayoutSchema),
    async (request) => mixers.layout(request.body),
  );

  api.post(
    '/rest-api/mixer/set_stream_label',
    change("Write a label over an input's picture (empty: none)", mixerLabelSchema),
    async (request) => mixers.label(request.body),
  );

  api.post(
    '/rest-api/mixer/setAudioVideo',
    change("Mute an input's sound, or set its volume in the mix", mixerAudioVideoSchema),
    async (request) => mixers.audioVideo(request.body),
  );

  api.post(
    '/rest-api/mixer/find_all',
    {
      ...CONTROL,
      schema: {
        summary: 'Every mixer, with its inputs',
        body: findAllSchema,
        response: { 200: z.array(mixerListingSchema).describe('Every mixer'), ...failures(400, 401, 404) },
      },
    },
    async () => {
      const [all, streams] = await Promise.all([plane.mixerFind(), plane.streams()]);
      if (all.length === 0) throw notFound('no mixers');
      const sessions = new Map(
        streams.filter((stream) => stream.state !== 'closed').map((stream) => [stream.name, stream.id]),
      );
      return all.map((mixer) => mixerListing(mixer, (stream) => sessions.get(stream)));
    },
  );

  api.post(
    '/rest-api/mixer/terminate',
    {
      ...CONTROL,
      schema: {
        summary: 'Stop a mixer (its stream ends, and the pushes of it with it)',
        body: mixerTerminateSchema,
        response: { 200: done(), ...failures(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await mixers.terminate(request.body.uri);
      return reply.code(200).send();
    },
  );
}
