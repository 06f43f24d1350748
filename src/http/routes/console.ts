import { readdir } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { LifecycleEvent } from '../../plane/lifecycle.js';
import type { MediaPlane } from '../../plane/plane.js';
import type { ClientQuota } from '../../security/client-quota.js';
import { findAllSchema } from '../schemas.js';
import { z } from 'zod';
import { binary, failures } from '../openapi.js';
import { routeAccess } from '../guard.js';

/** A console's view is sent again this often (ms) even when nothing changed: counters and uptimes move. */
const CONSOLE_REFRESH_MS = 2000;
/** Changes that come together (a stream's pushes going to standby at once) make one view (ms). */
const COALESCE_MS = 100;
/** A console that reads no more than this is behind (bytes waiting): it is closed, and reconnects. */
const MAX_BACKLOG_BYTES = 1 << 20;

/** Follows lifecycle events: this gateway's, or in a cluster every node's, each with its node. */
export type EventWatcher = (listener: (event: LifecycleEvent, node?: string) => void) => () => void;

/**
 * What the operator console reads, behind the control API key like the rest of `/rest-api/`:
 * `GET /rest-api/console/events`, server-sent events carrying every stream, push and mixer (`view`) at
 * once, on every lifecycle change and every 2 s, and each lifecycle event as it happens (`event`);
 * `POST /rest-api/console/sounds`, the WAV files of `media_dir` that `sound_on` can play.
 */
export function consoleRoutes(
  app: FastifyInstance,
  plane: MediaPlane,
  mediaDir: string,
  streams: ClientQuota,
  log: Logger,
  watchEvents: EventWatcher = (listener) => plane.events((event) => listener(event)),
  /** `thumbnail_interval_s`, in each view: how often the console's grid fetches the thumbnails (0: no grid). */
  thumbnailIntervalS = 0,
): void {
  /** Open event streams, ended when the gateway closes (they would hold its HTTP server open). */
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });

  // GET only: a HEAD would get the headers of a stream that never ends.
  app.get(
    '/rest-api/console/events',
    {
      ...routeAccess('control'),
      logLevel: 'warn',
      exposeHeadRoute: false,
      schema: {
        summary: 'Every stream, push and mixer as server-sent events (the operator console)',
        description:
          '`event: view` carries `{at, streams, pushes, mixers, thumbnailIntervalS}` (as stream/find_all, ' +
          'push/find_all and mixer/find_all show them, and `thumbnail_interval_s`) at once, on every change and ' +
          'every 2 s; `event: event` carries each lifecycle ' +
          'event as webhooks do.',
        response: { 200: binary('An event stream that stays open', 'text/event-stream'), ...failures(401, 429, 503) },
      },
    },
    (request, reply) => {
      const release = streams.acquire(request.ip, 'console event stream'); // 429 or 503 before anything is sent
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no', // nginx in front: pass each event on at once
      });
      out.flushHeaders();
      let closed = false;
      let pending: NodeJS.Timeout | undefined;
      const send = (event: string, data: unknown): void => {
        if (closed) return;
        if (out.writableLength > MAX_BACKLOG_BYTES) return void out.destroy();
        out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      const sendView = async (): Promise<void> => {
        pending = undefined;
        try {
          const [streams, pushes, mixers] = await Promise.all([plane.streams(), plane.find({}), plane.mixerFind()]);
          send('view', { at: new Date().toISOString(), streams, pushes, mixers, thumbnailIntervalS });
        } catch (error) {
          log.warn({ reason: (error as Error).message }, 'console view failed');
        }
      };
      const soon = (): void => {
        pending ??= setTimeout(() => void sendView(), COALESCE_MS);
      };
      const stopFollowing = watchEvents((event, node) => {
        send('event', node === undefined ? event : { ...event, node });
        soon();
      });
      const refresh = setInterval(() => void sendView(), CONSOLE_REFRESH_MS);
      const close = (): void => {
        if (closed) return;
        closed = true;
        release();
        open.delete(end);
        stopFollowing();
        clearInterval(refresh);
        clearTimeout(pending);
      };
      const end = (): void => {
        close();
        out.end();
      };
      open.add(end);
      out.on('error', close);
      out.on('close', close);
      request.raw.on('error', close);
      void sendView();
    },
  );

  const sounds = {
    summary: 'The WAV files of media_dir that sound_on plays',
    body: findAllSchema,
    response: { 200: z.array(z.string()).describe('File names'), ...failures(400, 401) },
  };
  app.post('/rest-api/console/sounds', { ...routeAccess('control'), schema: sounds }, async () => {
    const entries = await readdir(mediaDir, { withFileTypes: true }).catch(() => []);
    return entries
      .filter((e) => e.isFile() && /\.wav$/i.test(e.name))
      .map((e) => e.name)
      .sort();
  });
}
