import { connect, type Socket } from 'node:net';
import t from 'tap';
import { startGateway } from '../helpers/gateway.js';

// Slow clients (slowloris): 500 connections dribbling their headers for 15 s, reopened when the
// gateway drops them, while /health must keep answering within a second.

const CLIENTS = 500;
const HOLD_MS = 15_000;

t.test(
  '500 slow connections held for 15 s: /health answers within a second throughout; the gateway drops them',
  async (t) => {
    const gw = await startGateway({ http_headers_timeout_ms: 5000, limit_sessions_per_client: 10_000 });
    const { port } = new URL(gw.baseUrl);
    const sockets = new Set<Socket>();
    const deadline = Date.now() + HOLD_MS;
    let dropped = 0;
    let opened = 0;

    const slowClient = (): void => {
      if (Date.now() >= deadline) return;
      const socket = connect(Number(port), '127.0.0.1');
      opened++;
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('connect', () => socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
      const drip = setInterval(() => socket.writable && socket.write('X'), 1000);
      socket.on('close', () => {
        clearInterval(drip);
        sockets.delete(socket);
        if (Date.now() < deadline) {
          dropped++;
          slowClient();
        }
      });
    };
    for (let i = 0; i < CLIENTS; i++) slowClient();

    const latencies: number[] = [];
    while (Date.now() < deadline) {
      const started = performance.now();
      const res = await fetch(gw.baseUrl + '/health', { signal: AbortSignal.timeout(5000) });
      latencies.push(performance.now() - started);
      t.equal(res.status, 200);
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (const socket of sockets) socket.destroy();
    await gw.close();
    const worst = Math.max(...latencies);
    t.ok(worst < 1000, `/health answered in at most ${worst.toFixed(0)} ms over ${latencies.length} tries`);
    t.ok(dropped >= CLIENTS, `the gateway dropped ${dropped} slow connections (${opened} opened)`);
  },
);
