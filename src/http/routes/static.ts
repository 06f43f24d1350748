import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PUBLIC_DIR, SDK_DIST_DIR } from '../../paths.js';

/** The publish page and the browser SDK at stable paths. */
const FILES: Record<string, { path: string; type: string }> = {
  '/': { path: join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/sdk/gateway.js': { path: join(SDK_DIST_DIR, 'gateway.js'), type: 'text/javascript; charset=utf-8' },
  '/sdk/gateway.iife.js': { path: join(SDK_DIST_DIR, 'gateway.iife.js'), type: 'text/javascript; charset=utf-8' },
  '/sdk/gateway.d.ts': { path: join(SDK_DIST_DIR, 'gateway.d.ts'), type: 'text/plain; charset=utf-8' },
};

export function staticRoutes(app: FastifyInstance): void {
  for (const [url, file] of Object.entries(FILES)) {
    app.get(url, async (_request, reply) => {
      try {
        return reply.type(file.type).header('cache-control', 'no-cache').send(await readFile(file.path));
      } catch {
        return reply.code(404).send({ error: 'not_found', message: `${url} is not built: run npm run build` });
      }
    });
  }
}
