import type { IncomingMessage } from 'node:http';
import { addressBytes, inNetwork, parseNetwork } from './addresses.js';

/**
 * The client's address as `trust_proxy` says to read it: the socket's peer, or with a trusted
 * reverse proxy in front the address it forwarded (X-Forwarded-For, walked from the nearest hop
 * while the hop is a trusted proxy). The same rule fastify applies to HTTP requests, for WebSocket
 * upgrades that do not pass through fastify.
 */
export function clientAddressReader(trustProxy: boolean | readonly string[]): (request: IncomingMessage) => string {
  const trusted = typeof trustProxy === 'boolean' ? [] : trustProxy.map((c) => parseNetwork(c)!);
  const isTrusted = (address: string): boolean => {
    if (trustProxy === true) return true;
    const bytes = addressBytes(address);
    return bytes !== undefined && trusted.some((n) => inNetwork(bytes, n));
  };
  return (request) => {
    const peer = request.socket.remoteAddress ?? 'unknown';
    if (trustProxy === false) return peer;
    const header = request.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    let client = peer;
    while (isTrusted(client) && hops.length) client = hops.pop()!;
    return client;
  };
}
