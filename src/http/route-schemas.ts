import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import type { z } from 'zod';
import { parseBody } from '../core/validation.js';

/**
 * Routes declare their input as zod schemas (`schema.body`, `schema.params`, `schema.headers`): fastify
 * checks each part with its schema before the handler, which then reads what the schema made of it. A
 * refusal is the gateway's own (`invalid_request`, naming the first offending field), as `parseBody` words it.
 */
const zodValidator: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    try {
      // A refusal of the whole part (an empty offer) names the part: `body`.
      return { value: parseBody(schema, data, httpPart) };
    } catch (error) {
      return { error: error as Error };
    }
  };

/** Responses are declared for the API's description only: sent as they are, never held to their schema. */
const plainSerializer = () => (data: unknown) => JSON.stringify(data);

export function installRouteSchemas(app: FastifyInstance): void {
  app.setValidatorCompiler(zodValidator);
  app.setSerializerCompiler(plainSerializer);
}
