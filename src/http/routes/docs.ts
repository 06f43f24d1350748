import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PAGE_CSP } from './static.js';
import { routeAccess } from '../guard.js';

const PUBLIC = routeAccess('public');
/** The UI's page and files: no API of the gateway, left out of the document. */
const PAGE = { ...PUBLIC, schema: { hide: true } };

const UI_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** Swagger UI sets style attributes on its elements: its page alone allows them. */
const DOCS_CSP = PAGE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Gateway API</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="api"></div><script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body>
</html>
`;
const INIT = "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#api' });\n";

/**
 * The OpenAPI document at /openapi.json (made from the routes, `openapi.ts`) and Swagger UI over it at
 * /docs (no key needed: it holds no secret).
 */
export function docsRoutes(app: FastifyInstance): void {
  app.get(
    '/openapi.json',
    { ...PUBLIC, schema: { summary: 'This document: every route of the gateway, made from their own schemas' } },
    async () => app.swagger(),
  );
  app.get('/docs', PAGE, async (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', DOCS_CSP)
      .header('x-frame-options', 'DENY')
      .send(DOCS_PAGE),
  );
  app.get('/docs/init.js', PAGE, async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(INIT));
  for (const [file, type] of [
    ['swagger-ui.css', 'text/css'],
    ['swagger-ui-bundle.js', 'text/javascript'],
  ] as const) {
    app.get(`/docs/${file}`, PAGE, async (_request, reply) =>
      reply
        .type(`${type}; charset=utf-8`)
        .header('cache-control', 'max-age=3600')
        .send(await readFile(join(UI_DIR, file))),
    );
  }
}
