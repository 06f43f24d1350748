import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback that passes the client's bytes to `targetPort` at no more than
 * `bytesPerSecond` (a thin uplink), and the server's replies straight back.
 */
export class ThrottledProxy {
  readonly #sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, bytesPerSecond: number): Promise<ThrottledProxy> {
    const server = createServer();
    const proxy = await new Promise<ThrottledProxy>((resolve) =>
      server.listen(0, '127.0.0.1', () =>
        resolve(new ThrottledProxy(server, (server.address() as { port: number }).port)),
      ),
    );
    server.on('connection', (client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        proxy.#sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          proxy.#sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      upstream.pipe(client);
      const tickMs = 50;
      const perTick = Math.max(1, Math.round((bytesPerSecond * tickMs) / 1000));
      client.on('readable', () => {}); // buffer what arrives; it is read below, at the allowed pace
      const timer = setInterval(() => {
        const chunk = client.read(Math.min(perTick, client.readableLength));
        if (chunk) upstream.write(chunk);
      }, tickMs);
      client.on('close', () => clearInterval(timer));
    });
    return proxy;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
