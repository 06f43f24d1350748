import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';
import { pushInfoSchema } from '../pushes/info.js';
import { soundOnSchema, startupSchema } from '../pushes/requests.js';
import { checkReportSchema, checkRequestSchema } from '../outputs/check.js';
import { recordingFileRequestSchema, recordingFindSchema, recordingSchema } from '../recordings/library.js';
import { streamJsonSchema as stream } from '../publishers/description.js';
import { captionRequestSchema, captionResultSchema } from '../captions/request.js';
import { findAllSchema, findSchema, mediaSessionSchema, streamSchema } from './schemas.js';
import { nodeInfoSchema } from '../cluster/nodes.js';
import {
  mixerAudioVideoSchema,
  mixerInfoSchema,
  mixerListingSchema,
  mixerInputSchema,
  mixerLabelSchema,
  mixerLayoutSchema,
  mixerRemoveSchema,
  mixerStartupSchema,
  mixerTerminateSchema,
} from '../mixers/requests.js';

/**
 * The REST API as an OpenAPI 3.1 document, made from the same zod schemas that check each
 * request (`z.toJSONSchema`), with every status a route answers and its body. Served at
 * `/openapi.json`; `/docs` shows it.
 */

const errorBody = z.object({
  error: z
    .enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]])
    .describe('A stable code; for 500, whose fault it was: destination_refused, destination_unreachable or internal'),
  message: z.string(),
  field: z.string().optional().describe('The request field the error is about'),
});

const transponder = pushInfoSchema;

const health = z.object({
  status: z.literal('ok'),
  publishers: z.number(),
  transponders: z.number(),
  overloaded: z.boolean(),
  workers: z.number(),
});

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _, ...json } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as Json;
  return json;
}

const json = (schema: z.ZodType): Json => ({ 'application/json': { schema: schemaOf(schema, 'output') } });

const STATUS_TEXT: Record<number, string> = {
  400: 'A field is missing or wrong (`field` names it)',
  401: 'No API key, or a wrong one (with `api_keys` set)',
  403: 'A page of another origin, or another Host',
  404: 'Not found: no such route, or nothing of that name',
  405: 'The path is served with other methods (`Allow` lists them)',
  406: "The offer receives none of the stream's codecs of a kind it asks for (the message names them)",
  409: 'Conflict',
  413: 'The body is too large',
  414: 'A part of the path is longer than the gateway takes',
  415: 'Not the content type the route takes',
  429: 'Too many requests or sessions from this address (Retry-After)',
  431: 'The request line and headers are too large',
  500: 'The destination refused or could not be reached, or the gateway failed (`error` says which)',
  503: 'The gateway is at a limit or overloaded (Retry-After)',
};

function errors(...statuses: number[]): Json {
  return Object.fromEntries(
    statuses.map((status) => [String(status), { description: STATUS_TEXT[status], content: json(errorBody) }]),
  );
}

/** A Web Call Server style route: POST, a JSON body checked by `body`, and what it answers. */
function post(summary: string, body: z.ZodType, ok: Json, failures: number[]): Json {
  return {
    post: {
      summary,
      security: [{ apiKey: [] }],
      requestBody: { required: true, content: { 'application/json': { schema: schemaOf(body, 'input') } } },
      responses: { ...ok, ...errors(...failures) },
    },
  };
}

const empty = { '200': { description: 'Done (no body, as Web Call Server)' } };

export function openApiDocument(version: string): Json {
  const list = (schema: z.ZodType, what: string): Json => ({
    '200': { description: what, content: json(z.array(schema)) },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'WebRTC to RTMP gateway',
      version,
      description:
        'Republishes WebRTC streams (browser SDK, WHIP) to RTMP/RTMPS destinations. The transponder API follows Web ' +
        "Call Server's `/rest-api/push/*`.",
    },
    components: {
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'A control key of `api_keys` (needed once keys are set)',
        },
      },
    },
    paths: {
      '/rest-api/push/startup': post(
        'Start republishing a stream to an RTMP, RTMPS or SRT destination, or recording it (record://)',
        startupSchema,
        { '200': { description: 'Running', content: json(transponder) } },
        [400, 401, 403, 404, 409, 429, 500, 503],
      ),
      '/rest-api/push/check': post(
        'Connect to a destination as a push would, sending no media: reachable, application accepted, key accepted',
        checkRequestSchema,
        { '200': { description: 'How far the check got', content: json(checkReportSchema) } },
        [400, 401],
      ),
      '/rest-api/push/find': post(
        'Transponders by stream name or destination',
        findSchema,
        list(transponder, 'Matching transponders'),
        [400, 401, 404],
      ),
      '/rest-api/push/find_all': post(
        'Every transponder',
        findAllSchema,
        list(transponder, 'Every transponder'),
        [400, 401, 404],
      ),
      '/rest-api/push/terminate': post('Stop a transponder', mediaSessionSchema, empty, [400, 401, 404]),
      '/rest-api/push/mute': post("Silence a transponder's audio", mediaSessionSchema, empty, [400, 401, 404]),
      '/rest-api/push/unmute': post('Give a transponder its audio back', mediaSessionSchema, empty, [400, 401, 404]),
      '/rest-api/push/sound_on': post(
        "Play a WAV file into a transponder's audio",
        soundOnSchema,
        empty,
        [400, 401, 404],
      ),
      '/rest-api/push/sound_off': post('Stop the sound playing', mediaSessionSchema, empty, [400, 401, 404]),
      '/rest-api/mixer/startup': post(
        'Start a mixer: one picture and one sound made from several streams, published as a stream of its own (localStreamName)',
        mixerStartupSchema,
        { '200': { description: 'Running', content: json(mixerInfoSchema) } },
        [400, 401, 409, 503],
      ),
      '/rest-api/mixer/add': post(
        'Add a publishing stream to a mixer, after the others or at a slot',
        mixerInputSchema,
        { '200': { description: 'The mixer', content: json(mixerInfoSchema) } },
        [400, 401, 404, 409],
      ),
      '/rest-api/mixer/remove': post(
        'Remove a stream from a mixer',
        mixerRemoveSchema,
        { '200': { description: 'The mixer', content: json(mixerInfoSchema) } },
        [400, 401, 404],
      ),
      '/rest-api/mixer/set_layout': post(
        "Change a mixer's layout while it runs",
        mixerLayoutSchema,
        { '200': { description: 'The mixer', content: json(mixerInfoSchema) } },
        [400, 401, 404],
      ),
      '/rest-api/mixer/set_stream_label': post(
        "Write a label over an input's picture (empty: none)",
        mixerLabelSchema,
        { '200': { description: 'The mixer', content: json(mixerInfoSchema) } },
        [400, 401, 404],
      ),
      '/rest-api/mixer/setAudioVideo': post(
        "Mute an input's sound, or set its volume in the mix",
        mixerAudioVideoSchema,
        { '200': { description: 'The mixer', content: json(mixerInfoSchema) } },
        [400, 401, 404],
      ),
      '/rest-api/mixer/find_all': post(
        'Every mixer, with its inputs',
        findAllSchema,
        list(mixerListingSchema, 'Every mixer'),
        [400, 401, 404],
      ),
      '/rest-api/mixer/terminate': post(
        'Stop a mixer (its stream ends, and the pushes of it with it)',
        mixerTerminateSchema,
        empty,
        [400, 401, 404],
      ),
      '/rest-api/recording/find_all': post(
        'The recordings (parts of `record://` pushes) on this node, of one stream or all',
        recordingFindSchema,
        list(recordingSchema, 'Every part, oldest first'),
        [400, 401, 404],
      ),
      '/rest-api/recording/delete': post(
        "Delete a recording's part (409 while it is being written)",
        recordingFileRequestSchema,
        empty,
        [400, 401, 404, 409],
      ),
      '/rest-api/recording/download/{fileName}': {
        get: {
          summary:
            "Download a recording's part (fragmented MP4), or its captions (WebVTT, `.vtt`); one byte range per " +
            'request (`Range: bytes=a-b`), as a player seeking asks',
          security: [{ apiKey: [] }],
          parameters: [
            { name: 'fileName', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'Range', in: 'header', required: false, schema: { type: 'string' } },
          ],
          responses: {
            '200': {
              description: 'The whole file',
              content: {
                'video/mp4': { schema: { type: 'string', contentMediaType: 'video/mp4' } },
                'text/vtt': { schema: { type: 'string', contentMediaType: 'text/vtt' } },
              },
            },
            '206': {
              description: 'The range asked for (`Content-Range`)',
              content: { 'video/mp4': { schema: { type: 'string', contentMediaType: 'video/mp4' } } },
            },
            '416': { description: 'The range starts past the end (`Content-Range: bytes */size`)' },
            ...errors(400, 401, 404),
          },
        },
      },
      '/rest-api/stream/find': post(
        'A publishing stream and its figures',
        streamSchema,
        list(stream, 'The stream'),
        [400, 401, 404],
      ),
      '/rest-api/stream/find_all': post(
        'Every publishing stream',
        findAllSchema,
        list(stream, 'Every stream'),
        [400, 401, 404],
      ),
      '/rest-api/stream/caption': post(
        'A caption (CEA-608 roll-up, in the H.264 of every push of the stream, on the frames captured when it came or at `at`)',
        captionRequestSchema,
        { '200': { description: 'How many pushes carry it', content: json(captionResultSchema) } },
        [400, 401, 404],
      ),
      '/rest-api/stream/snapshot': post(
        "The stream's latest keyframe as a JPEG",
        streamSchema,
        {
          '200': {
            description: 'The picture',
            content: { 'image/jpeg': { schema: { type: 'string', contentMediaType: 'image/jpeg' } } },
          },
        },
        [400, 401, 404, 500, 503],
      ),
      '/rest-api/console/sounds': post(
        'The WAV files of media_dir that sound_on plays',
        findAllSchema,
        list(z.string(), 'File names'),
        [400, 401],
      ),
      '/rest-api/console/events': {
        get: {
          summary: 'Every stream, push and mixer as server-sent events (the operator console)',
          description:
            '`event: view` carries `{at, streams, pushes, mixers}` (as stream/find_all, push/find_all and ' +
            'mixer/find_all show them) at once, on every change and every 2 s; `event: event` carries each lifecycle ' +
            'event as webhooks do.',
          security: [{ apiKey: [] }],
          responses: {
            '200': {
              description: 'An event stream that stays open',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...errors(401, 429, 503),
          },
        },
      },
      '/whip/{streamName}': {
        post: {
          summary: 'Publish over WHIP (RFC 9725)',
          parameters: [{ name: 'streamName', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: { 'application/sdp': { schema: { type: 'string' } } } },
          responses: {
            '201': {
              description: 'The SDP answer; Location names the session',
              headers: { Location: { schema: { type: 'string' } } },
              content: { 'application/sdp': { schema: { type: 'string' } } },
            },
            ...errors(400, 401, 409, 413, 415, 429, 503),
          },
        },
      },
      '/whep/{streamName}': {
        post: {
          summary:
            'Watch a published stream over WHEP: its media as it arrives, not transcoded (needs webrtc_engine: ' +
            "mediasoup); 406 when the offer asks for video but receives none of the stream's video codec",
          description:
            'With keys set: `Authorization: Bearer` with the control key, or a publish key or JWT with a view grant ' +
            '(`view: true`) covering the stream.',
          parameters: [{ name: 'streamName', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: { 'application/sdp': { schema: { type: 'string' } } } },
          responses: {
            '201': {
              description: 'The SDP answer; Location names the session',
              headers: { Location: { schema: { type: 'string' } } },
              content: { 'application/sdp': { schema: { type: 'string' } } },
            },
            ...errors(400, 401, 403, 404, 406, 413, 415, 429, 503),
          },
        },
      },
      '/whep/{streamName}/{viewerId}': {
        delete: {
          summary: 'End a WHEP session',
          parameters: ['streamName', 'viewerId'].map((name) => ({
            name,
            in: 'path',
            required: true,
            schema: { type: 'string' },
          })),
          responses: { '200': { description: 'Ended' }, ...errors(401, 403, 404) },
        },
      },
      '/whip/{streamName}/{sessionId}': {
        delete: {
          summary: 'End a WHIP session',
          parameters: ['streamName', 'sessionId'].map((name) => ({
            name,
            in: 'path',
            required: true,
            schema: { type: 'string' },
          })),
          responses: { '200': { description: 'Ended' }, ...errors(401, 404) },
        },
      },
      '/rest-api/cluster/nodes': {
        get: {
          summary: 'The nodes of the cluster alive now, with their load (404 when the gateway is not in a cluster)',
          security: [{ apiKey: [] }],
          responses: {
            '200': {
              description: "This node's id and every node's",
              content: json(
                z.strictObject({ node: z.string(), nodes: z.array(nodeInfoSchema.extend({ heardAgoMs: z.number() })) }),
              ),
            },
            ...errors(401, 404, 503),
          },
        },
      },
      '/rest-api/cluster/drain': {
        post: {
          summary:
            'Drains this node (a rolling deploy): it takes no new work, moves each stream to another node one at a ' +
            'time (the SDK publishes again there, its pushes follow), then exits; SIGTERM does the same in a cluster',
          security: [{ apiKey: [] }],
          responses: {
            '202': {
              description: 'Draining',
              content: json(z.strictObject({ node: z.string(), draining: z.literal(true) })),
            },
            ...errors(401, 404),
          },
        },
      },
      '/health': {
        get: { summary: 'Liveness and load', responses: { '200': { description: 'Up', content: json(health) } } },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          security: [{ apiKey: [] }],
          responses: {
            '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...errors(401),
          },
        },
      },
    },
  };
}
