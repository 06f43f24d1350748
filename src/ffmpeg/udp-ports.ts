import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';

/**
 * Finds `count` consecutive free UDP ports on loopback starting at an even port, as ffmpeg's RTP
 * input needs (RTP on an even port, RTCP on the next). Binds them to prove they are free, then
 * releases them for ffmpeg.
 */
export async function reservePorts(range: [number, number], count: number, attempts = 50): Promise<number> {
  for (let i = 0; i < attempts; i++) {
    const span = range[1] - range[0] - count;
    const base = range[0] + 2 * Math.floor((Math.random() * span) / 2);
    if (await allFree(base, count)) return base;
  }
  throw new Error(`no ${count} consecutive free UDP ports in ${range[0]}-${range[1]}`);
}

async function allFree(base: number, count: number): Promise<boolean> {
  const sockets = [];
  try {
    for (let p = base; p < base + count; p++) {
      const socket = createSocket('udp4');
      sockets.push(socket);
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(p, '127.0.0.1', () => resolve());
      });
    }
    return true;
  } catch {
    return false;
  } finally {
    for (const socket of sockets) {
      try {
        socket.close();
      } catch {
        // Never bound.
      }
    }
  }
}

/** Whether some process has the UDP port bound (read from /proc/net/udp, IPv4). */
export async function udpPortBound(port: number): Promise<boolean> {
  const table = await readFile('/proc/net/udp', 'utf8');
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix) ?? false);
}
