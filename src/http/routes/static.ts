import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PUBLIC_DIR, SDK_DIST_DIR } from '../../core/paths.js';
import { routeAccess } from '../guard.js';

/**
 * The gateway's pages allow only their own scripts and styles, media from the camera, and
 * connections back to the gateway (the SDK's WebSocket; CSP 3 'self' covers ws: and wss: of the
 * same host); nothing may frame them.
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE_HEADERS = {
  'content-security-policy': PAGE_CSP,
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(self), microphone=(self), geolocation=()',
};

/** The SDK is loaded by integrators' pages on other origins (module scripts need CORS). */
const SDK_HEADERS = { 'access-control-allow-origin': '*', 'cross-origin-resource-policy': 'cross-origin' };

const FILES: Record<string, { path: string; type: string; headers: Record<string, string> }> = {
  '/': { path: join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8', headers: PAGE_HEADERS },
  '/publish.js': { path: join(PUBLIC_DIR, 'publish.js'), type: 'text/javascript; charset=utf-8', headers: {} },
  '/picture.js': { path: join(PUBLIC_DIR, 'picture.js'), type: 'text/javascript; charset=utf-8', headers: {} },
  '/publish.css': { path: join(PUBLIC_DIR, 'publish.css'), type: 'text/css; charset=utf-8', headers: {} },
  '/console': { path: join(PUBLIC_DIR, 'console.html'), type: 'text/html; charset=utf-8', headers: PAGE_HEADERS },
  '/console.css': { path: join(PUBLIC_DIR, 'console.css'), type: 'text/css; charset=utf-8', headers: {} },
  '/console.js': { path: join(PUBLIC_DIR, 'console.js'), type: 'text/javascript; charset=utf-8', headers: {} },
  '/sdk/gateway.js': {
    path: join(SDK_DIST_DIR, 'gateway.js'),
    type: 'text/javascript; charset=utf-8',
    headers: SDK_HEADERS,
  },
  '/sdk/gateway.iife.js': {
    path: join(SDK_DIST_DIR, 'gateway.iife.js'),
    type: 'text/javascript; charset=utf-8',
    headers: SDK_HEADERS,
  },
  '/sdk/gateway.d.ts': {
    path: join(SDK_DIST_DIR, 'gateway.d.ts'),
    type: 'text/plain; charset=utf-8',
    headers: SDK_HEADERS,
  },
};

/** The publish page, the operator console and the browser SDK at stable paths; every response carries the common security headers. */
export function staticRoutes(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000');
  });
  for (const [url, file] of Object.entries(FILES)) {
    // Files, no API: left out of the OpenAPI document.
    app.get(url, { ...routeAccess('public'), schema: { hide: true } }, async (_request, reply) => {
      try {
        return reply
          .type(file.type)
          .headers(file.headers)
          .header('cache-control', 'no-cache')
          .send(await readFile(file.path));
      } catch {
        return reply.code(404).send({ error: 'not_found', message: `${url} is not built: run npm run build` });
      }
    });
  }
}
