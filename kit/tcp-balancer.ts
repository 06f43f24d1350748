import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP load balancer on loopback for the cluster's tests, as an operator's HTTP load balancer
 * would stand before the nodes: each connection goes to the next backend in turn, and a backend
 * that refuses it (a node killed) is skipped. No stickiness: HTTP and WebSocket connections pass
 * through as they are.
 */
export class TcpBalancer {
  readonly #sockets = new Set<Socket>();
  #next = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly backends: { host: string; port: number }[],
  ) {}

  static async start(backends: { host: string; port: number }[]): Promise<TcpBalancer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    const balancer = new TcpBalancer(server, (server.address() as { port: number }).port, backends);
    server.on('connection', (client) => balancer.#accept(client));
    server.on('error', () => {});
    return balancer;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  #accept(client: Socket): void {
    this.#track(client);
    client.pause();
    const tryBackend = (left: number): void => {
      if (left === 0 || client.destroyed) return void client.destroy();
      const backend = this.backends[this.#next++ % this.backends.length]!;
      const upstream = createConnection(backend);
      let connected = false;
      this.#track(upstream);
      upstream.once('error', () => (connected ? client.destroy() : tryBackend(left - 1)));
      upstream.once('connect', () => {
        connected = true;
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
      });
    };
    tryBackend(this.backends.length);
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => this.#sockets.delete(socket));
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
