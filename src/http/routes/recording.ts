import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { notFound } from '../../core/errors.js';
import {
  recordingDownloadSchema,
  recordingFileRequestSchema,
  recordingFindSchema,
  recordingSchema,
  type RecordingLibrary,
} from '../../recordings/library.js';
import { routeAccess } from '../guard.js';
import { binary, done, failures } from '../openapi.js';

const CONTROL = routeAccess('control');

/** Ranges a request may list; more is refused (416) rather than answered with the whole file. */
const MAX_RANGES = 16;

/**
 * The part of a file a download sends for `Range` (RFC 9110 14.2): `undefined` for the whole file
 * (no header, or a unit other than bytes), `unsatisfiable` (416) when no range it lists is valid
 * and satisfiable (`bytes=5-3`, a start past the end, a header it cannot read) or it lists more
 * than `MAX_RANGES`. Several ranges are sent as the one range that covers them all (a single-part
 * 206, which the RFC allows for ranges coalesced).
 */
export function byteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (!/^bytes=/i.test(text)) return /^[\w-]+=/.test(text) ? undefined : 'unsatisfiable';
  const specs = text
    .slice(6)
    .split(',')
    .map((spec) => spec.trim());
  if (specs.length > MAX_RANGES) return 'unsatisfiable';
  const ranges: { start: number; end: number }[] = [];
  for (const spec of specs) {
    const match = /^(\d*)-(\d*)$/.exec(spec);
    if (!match || (match[1] === '' && match[2] === '')) return 'unsatisfiable';
    const [first, last] = [match[1]!, match[2]!];
    if (first === '') {
      const suffix = Number(last);
      if (suffix > 0 && size > 0) ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    const start = Number(first);
    if (last !== '' && Number(last) < start) return 'unsatisfiable'; // an invalid range-spec
    if (start < size) ranges.push({ start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) });
  }
  if (ranges.length === 0) return 'unsatisfiable';
  return { start: Math.min(...ranges.map((r) => r.start)), end: Math.max(...ranges.map((r) => r.end)) };
}

/** The files `record://` pushes wrote on this node: list, download (HTTP ranges), delete. */
export function recordingRoutes(app: FastifyInstance, library: RecordingLibrary): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post(
    '/rest-api/recording/find_all',
    {
      ...CONTROL,
      schema: {
        summary: 'The recordings (parts of `record://` pushes) on this node, of one stream or all',
        body: recordingFindSchema,
        response: { 200: z.array(recordingSchema).describe('Every part, oldest first'), ...failures(400, 401, 404) },
      },
    },
    async (request) => {
      const found = await library.list(request.body);
      if (found.length === 0) throw notFound('no recordings');
      return found;
    },
  );

  api.post(
    '/rest-api/recording/delete',
    {
      ...CONTROL,
      schema: {
        summary: "Delete a recording's part (409 while it is being written)",
        body: recordingFileRequestSchema,
        response: { 200: done(), ...failures(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      await library.remove(request.body.fileName);
      return reply.code(200).send();
    },
  );

  api.get(
    '/rest-api/recording/download/:fileName',
    {
      ...CONTROL,
      schema: {
        summary:
          "Download a recording's part (fragmented MP4), or its captions (WebVTT, `.vtt`); one byte range per " +
          'request (`Range: bytes=a-b`), as a player seeking asks',
        params: recordingDownloadSchema,
        headers: z.looseObject({ range: z.string().optional().describe('`bytes=a-b`: a part of the file') }),
        response: {
          200: binary('The whole file', 'video/mp4', 'text/vtt'),
          206: binary('The range asked for (`Content-Range`)', 'video/mp4'),
          416: done('The range starts past the end (`Content-Range: bytes */size`)'),
          ...failures(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const { fileName } = request.params;
      const { handle, size } = await library.file(fileName);
      const type = fileName.endsWith('.vtt') ? 'text/vtt; charset=utf-8' : 'video/mp4';
      let streaming = false;
      try {
        const range = byteRange(request.headers.range, size);
        reply
          .header('accept-ranges', 'bytes')
          .header('content-type', type)
          .header('content-disposition', `attachment; filename="${fileName}"`);
        if (range === 'unsatisfiable') return reply.code(416).header('content-range', `bytes */${size}`).send();
        const { start, end } = range ?? { start: 0, end: size - 1 };
        if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
        reply.header('content-length', String(Math.max(0, end - start + 1)));
        if (size === 0) return reply.send('');
        streaming = true;
        // The stream closes the handle when it ends, or when the client goes.
        return reply.send(handle.createReadStream({ start, end }));
      } finally {
        if (!streaming) await handle.close();
      }
    },
  );
}
