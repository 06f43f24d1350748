import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import swagger, { type SwaggerTransform } from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROOT } from '../core/paths.js';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';

/**
 * The API as an OpenAPI 3.1 document, made by @fastify/swagger from the routes as they are registered:
 * each route's own zod schemas (those fastify checks its requests with), its summary and its answers,
 * and the security its declared access asks for. Served at `/openapi.json`; `/docs` shows it.
 * What the answers of many routes share is here.
 */

const errorBody = z.object({
  error: z
    .enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]])
    .describe('A stable code; for 500, whose fault it was: destination_refused, destination_unreachable or internal'),
  message: z.string(),
  field: z.string().optional().describe('The request field the error is about'),
});

const STATUS_TEXT = {
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
} as const;

export type FailureStatus = keyof typeof STATUS_TEXT;

/** The error answers of a route, each with the body every error carries: `{error, message, field?}`. */
export function failures(...statuses: FailureStatus[]): Record<number, z.ZodType> {
  return Object.fromEntries(statuses.map((status) => [status, errorBody.describe(STATUS_TEXT[status])]));
}

/** An answer with no body (`200` as Web Call Server answers its commands). */
export const done = (description = 'Done (no body, as Web Call Server)'): z.ZodType => z.null().describe(description);

/** An answer whose body is not JSON: a file, a picture, an SDP answer, an event stream. */
export function binary(
  description: string,
  ...types: string[]
): { description: string; content: Record<string, { schema: z.ZodType }> } {
  return {
    description,
    content: Object.fromEntries(types.map((type) => [type, { schema: z.string().meta({ contentMediaType: type }) }])),
  };
}

/** The control and metrics routes need an API key (`config.access`), the others authorize themselves or not at all. */
const transform: SwaggerTransform = (input) => {
  const { schema, url } = jsonSchemaTransform(input as Parameters<typeof jsonSchemaTransform>[0]);
  // The headers an answer carries (`Location`), which the zod transform leaves out.
  const declared = (input.schema?.response ?? {}) as Record<string, { headers?: object }>;
  const response = schema.response as Record<string, object> | undefined;
  for (const [status, { headers }] of Object.entries(declared))
    if (headers && response?.[status]) response[status] = { ...response[status], headers };
  const access = input.route.config?.access;
  if (access !== 'control' && access !== 'metrics') return { schema, url };
  return { schema: { ...schema, security: [{ apiKey: [] }] }, url };
};

/** Registers @fastify/swagger: the routes declared once it is loaded make the document (`app.swagger()`). */
export function installOpenApi(app: FastifyInstance): void {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'WebRTC to RTMP gateway',
        version,
        description:
          'Republishes WebRTC streams (browser SDK, WHIP) to RTMP/RTMPS destinations. The transponder API follows ' +
          "Web Call Server's `/rest-api/push/*`.",
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
    },
    transform,
  });
}
