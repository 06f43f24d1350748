import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Messages between nodes over Redis's publish/subscribe: to every node (`broadcast`, heard by
 * `onBroadcast`) and to one node (`send`, heard by `onMessage`). Nothing here is kept: a node
 * that is away when a message goes misses it. Messages hold no secret (destinations redacted).
 * The subscription is made again each time the connection is back. The channels keep the names
 * nodes of every release use (`relay:all`, `relay:<node>`).
 */
export class NodeMessenger {
  readonly #subscriber: Redis;
  onBroadcast: (message: unknown) => void = () => {};
  onMessage: (message: unknown) => void = () => {};

  constructor(
    private readonly redis: Redis,
    node: string,
    private readonly prefix: string,
    log: Logger,
  ) {
    this.#subscriber = redis.duplicate({ connectionName: `gateway-${node}-messages` });
    this.#subscriber.on('error', () => {}); // told by the main connection, which fails alike
    const channels = [this.#all, this.#to(node)];
    this.#subscriber.on('ready', () => {
      this.#subscriber
        .subscribe(...channels)
        .catch((error: Error) => log.warn({ reason: error.message }, 'messages between nodes: could not subscribe'));
    });
    this.#subscriber.on('message', (channel: string, text: string) => {
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      if (channel === this.#all) this.onBroadcast(message);
      else this.onMessage(message);
    });
  }

  get #all(): string {
    return `${this.prefix}relay:all`;
  }
  #to(node: string): string {
    return `${this.prefix}relay:${node}`;
  }

  /** To every node, this one included (each drops its own). Lost while Redis is away. */
  broadcast(message: unknown): void {
    this.redis.publish(this.#all, JSON.stringify(message)).catch(() => {});
  }

  /** To one node. Lost while Redis is away. */
  send(node: string, message: unknown): void {
    this.redis.publish(this.#to(node), JSON.stringify(message)).catch(() => {});
  }

  close(): void {
    this.#subscriber.disconnect();
  }
}
