import { networkInterfaces } from 'node:os';

/**
 * Where a publisher on this machine (Chromium, the synthetic publisher) may reach a gateway from:
 * loopback, and this machine's own IPv4 addresses. A browser sends its ICE checks to 127.0.0.1 from
 * each of its host candidates, so with an ICE-lite engine (mediasoup) the pair it nominates may have
 * the machine's LAN address as its source: it is still this machine, and no packet leaves it.
 */
export const THIS_MACHINE: readonly string[] = [
  '127.0.0.0/8',
  ...Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => `${a.address}/32`),
  ),
];
