import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FastifySchema, RouteOptions } from 'fastify';
import type { RouteAccess } from './guard.js';

/** fastify's router options, shared with the route table so both match a path alike. */
export const ROUTER_OPTIONS = {
  // A 128-character stream name and a session id fit in a WHIP resource path.
  maxParamLength: 256,
} as const;

/** A registered route as the gateway declared it. */
export interface RouteEntry {
  method: string;
  url: string;
  access: RouteAccess;
  /** What the route declared of its input and answers (`schema`): what it is checked with and documented by. */
  schema?: FastifySchema;
}

/**
 * Every route the gateway registered, with its declared access: the methods a path is served with
 * (`Allow` of a 405) come from a router of the same kind and options as fastify's own, so a path is
 * matched here exactly as the request router matched it. Tests walk `entries` to cover every route.
 */
export class RouteTable {
  readonly #router = FindMyWay(ROUTER_OPTIONS);
  readonly #entries: RouteEntry[] = [];

  add(route: RouteOptions): void {
    const methods = ([] as string[]).concat(route.method).map((m) => m.toUpperCase() as HTTPMethod);
    for (const method of methods) {
      this.#entries.push({ method, url: route.url, access: route.config!.access!, schema: route.schema });
      this.#router.on(method, route.url, () => {});
    }
  }

  get entries(): readonly RouteEntry[] {
    return this.#entries;
  }

  /** The methods that `path` (a request's raw URL) is served with; none when no route has it. */
  allowed(path: string): string[] {
    const methods = new Set(this.#entries.map((e) => e.method));
    return [...methods].filter((method) => {
      try {
        return this.#router.find(method as HTTPMethod, path) !== null;
      } catch {
        return false;
      }
    });
  }
}
