import t from 'tap';
import { startGateway } from '../helpers/gateway.js';

// Every route the gateway registers is in its OpenAPI document, made from the route's own schema: a
// route that takes a path parameter or a body declares its schema (which fastify checks its requests
// with), so none is left out of the document, and none is checked by hand beside it.

/** Pages and files: they take nothing (no parameter, no body) and are no API, so they are left out of the document. */
const FILES = new Set([
  '/',
  '/publish.js',
  '/picture.js',
  '/publish.css',
  '/console',
  '/console.css',
  '/console.js',
  '/sdk/gateway.js',
  '/sdk/gateway.iife.js',
  '/sdk/gateway.d.ts',
  '/docs',
  '/docs/init.js',
  '/docs/swagger-ui.css',
  '/docs/swagger-ui-bundle.js',
]);

/** POSTs whose body is not read: the command is the path itself. */
const NO_BODY = new Set(['POST /rest-api/cluster/drain']);

type Operation = { summary?: string; parameters?: { name: string; in: string }[]; requestBody?: unknown };

t.test('every registered route is documented from its own schema', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const doc = (await (await fetch(`${gw.baseUrl}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, Operation>>;
  };
  let documented = 0;
  for (const { method, url, schema } of gw.routes.entries) {
    if (method === 'HEAD') continue; // fastify's twin of a GET
    const route = `${method} ${url}`;
    if (FILES.has(url)) {
      t.ok(schema?.hide, `${route}: a file, left out of the document`);
      continue;
    }
    t.ok(schema, `${route} declares a schema`);
    const operation = doc.paths[url.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
    t.ok(operation?.summary, `${route} is in the document, with a summary`);
    const params = [...url.matchAll(/:(\w+)/g)].map((match) => match[1]!);
    if (params.length > 0) {
      t.ok(schema?.params, `${route} declares the schema of its path parameters`);
      for (const name of params)
        t.ok(
          operation?.parameters?.some((p) => p.in === 'path' && p.name === name),
          `${route}: {${name}} is documented`,
        );
    }
    if (method === 'POST' && !NO_BODY.has(route)) {
      t.ok(schema?.body, `${route} declares the schema of its body`);
      t.ok(operation?.requestBody, `${route}: its body is documented`);
    }
    documented++;
  }
  t.ok(documented >= 30, `${documented} routes documented`);
  const registered = new Set(gw.routes.entries.map((e) => `${e.method} ${e.url.replace(/:(\w+)/g, '{$1}')}`));
  for (const [path, operations] of Object.entries(doc.paths))
    for (const method of Object.keys(operations))
      t.ok(registered.has(`${method.toUpperCase()} ${path}`), `${method} ${path} is a registered route`);
});
