import { z } from 'zod';
import { streamNameSchema } from '../publishers/stream-name.js';
import { findFilterSchema, mediaSessionIdSchema } from '../pushes/requests.js';

export const findSchema = findFilterSchema;

export const findAllSchema = z.strictObject({});

export const mediaSessionSchema = z.strictObject({ mediaSessionId: mediaSessionIdSchema });

/** A stream by its name, as Web Call Server's `/rest-api/stream/*` take it. */
export const streamSchema = z.strictObject({ name: streamNameSchema });
