import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../errors.js';
import { recordingFileRequestSchema, recordingFindSchema, type RecordingLibrary } from '../../recordings/library.js';
import { routeAccess } from '../guard.js';
import { parseBody } from '../validation.js';

const CONTROL = routeAccess('control');

/**
 * The part of `Range` a download honours: one range of bytes (`a-b`, `a-`, `-n`), `undefined` to
 * send the whole file (no range, another unit, several ranges, or a header it cannot read, as RFC
 * 9110 allows), or `unsatisfiable` when it starts past the end.
 */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [first, last] = [match[1]!, match[2]!];
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return { start, end };
}

/** The files `record://` pushes wrote on this node: list, download (HTTP ranges), delete. */
export function recordingRoutes(app: FastifyInstance, library: RecordingLibrary): void {
  app.post('/rest-api/recording/find_all', CONTROL, async (request) => {
    const found = await library.list(parseBody(recordingFindSchema, request.body));
    if (found.length === 0) throw notFound('no recordings');
    return found;
  });

  app.post('/rest-api/recording/delete', CONTROL, async (request, reply) => {
    await library.remove(parseBody(recordingFileRequestSchema, request.body).fileName);
    return reply.code(200).send();
  });

  app.get('/rest-api/recording/download/:fileName', CONTROL, async (request, reply) => {
    const { fileName } = parseBody(recordingFileRequestSchema, request.params);
    const { path, size } = await library.file(fileName);
    const range = byteRange(request.headers.range, size);
    reply.header('accept-ranges', 'bytes').header('content-type', 'video/mp4').header('content-disposition', `attachment; filename="${fileName}"`);
    if (range === 'unsatisfiable') return reply.code(416).header('content-range', `bytes */${size}`).send();
    const { start, end } = range ?? { start: 0, end: size - 1 };
    if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
    reply.header('content-length', String(Math.max(0, end - start + 1)));
    if (size === 0) return reply.send('');
    return reply.send(createReadStream(path, { start, end }));
  });
}
