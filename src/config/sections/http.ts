import { z } from 'zod';
import { cidr, listenPort, ms, type Parsed } from '../fields.js';

/**
 * The HTTP server (`server.ts`, `gateway/http-server.ts`): where it listens, HTTPS and its certificate (reloaded on
 * SIGHUP), request timeouts, the `Host` and `Origin` checks (`security/origins.ts`) and client addresses
 * behind proxies (`security/client-address.ts`).
 */
export const httpFields = {
  http_host: z.string().min(1).default('127.0.0.1').describe('HTTP listen address (REST, WHIP, SDK, publish page)'),
  http_port: listenPort(8080, 'HTTP port'),
  http_allowed_hosts: z
    .array(z.string().regex(/^[A-Za-z0-9.*:[\]-]{1,253}$/, 'must be a host name, "*.example.com" or an address'))
    .default([])
    .describe(
      'names the gateway answers to (`Host`), `*.example.com` patterns; empty: loopback names when on loopback, else any',
    ),
  http_allowed_origins: z
    .array(
      z
        .string()
        .regex(/^(\*|https?:\/\/[A-Za-z0-9.*:[\]-]+)$/, 'must be an origin such as https://app.example.com, or "*"'),
    )
    .default([])
    .describe(
      'page origins that may use the REST API and the WebSocket (`"*"`: any); empty: the gateway\'s own and localhost pages',
    ),
  http_request_timeout_ms: ms(1000, 600_000, 30_000, 'a request must arrive whole within this (ms)'),
  http_headers_timeout_ms: ms(1000, 120_000, 10_000, "a request's headers must arrive within this (ms)"),
  https_cert_file: z.string().default('').describe('PEM certificate chain: HTTPS and WSS (reloaded on SIGHUP)'),
  https_key_file: z.string().default('').describe('PEM private key of `https_cert_file` (reloaded on SIGHUP)'),
  https_port: listenPort(0, '`0`: HTTPS replaces HTTP on `http_port`; else HTTPS on this port beside HTTP'),
  trust_proxy: z
    .union([z.boolean(), z.array(cidr)])
    .default(false)
    .describe("`true` or the proxies' CIDR blocks: client addresses from `X-Forwarded-For`"),
};

/** HTTPS has its certificate and its key, both or neither. */
export function checkHttps(c: Parsed<typeof httpFields>, ctx: z.RefinementCtx): void {
  if (Boolean(c.https_cert_file) !== Boolean(c.https_key_file)) {
    ctx.addIssue({
      code: 'custom',
      path: [c.https_cert_file ? 'https_key_file' : 'https_cert_file'],
      message: 'https_cert_file and https_key_file go together',
    });
  }
  if (c.https_port && !c.https_cert_file) {
    ctx.addIssue({ code: 'custom', path: ['https_port'], message: 'needs https_cert_file and https_key_file' });
  }
}
