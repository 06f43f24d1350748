import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import { readSecret } from '../security/secrets.js';
import { RedisPushStore } from '../store/redis-store.js';
import { Sealer } from '../security/seal.js';
import { StreamClaims } from './claims.js';
import { NodeRegistry, type NodeInfo } from './nodes.js';
import { connectRedis, redactedRedisUrl, whenReady } from './redis.js';
import { NodeMessenger } from './messenger.js';

export type ClusterConfig = NonNullable<GatewayConfig['cluster']>;

/** What a node tells of its load with each heartbeat. */
export type NodeLoad = Pick<NodeInfo, 'publishers' | 'transponders' | 'overload'>;

/**
 * This gateway as a node of the cluster: its Redis connection, its entry in the node registry
 * (a heartbeat with its load), the streams it holds (claims renewed with each heartbeat) and the
 * store of kept pushes, shared by every node. `onLost` is told of each stream whose claim was
 * lost (its lease ran out while Redis could not be reached, and another node took the stream):
 * this node must stop serving it.
 */
export class ClusterNode {
  readonly id: string;
  readonly redis: Redis;
  readonly registry: NodeRegistry;
  readonly claims: StreamClaims;
  readonly store: RedisPushStore;
  /** Messages to the other nodes: push changes, and what happens to publishes placed for another node. */
  readonly messenger: NodeMessenger;
  /** Seals what is kept in Redis; the same secret on every node. */
  readonly sealer: Sealer;
  /** Signs the calls between nodes. */
  readonly secret: string;
  readonly startedAt = new Date().toISOString();
  /** This run of the node (`NodeInfo.boot`). */
  readonly boot = randomUUID();
  #draining = false;
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #load: () => NodeLoad = () => ({ publishers: 0, transponders: 0 });
  onLost: (stream: string, holder: string | undefined) => void = () => {};

  constructor(
    readonly config: ClusterConfig,
    httpPort: number,
    private readonly log: Logger,
  ) {
    this.secret = readSecret(config, 'cluster.secret');
    this.id = config.node_id ?? `${hostname()}-${httpPort}`.replace(/[^\w.-]/g, '-').slice(0, 64);
    this.redis = connectRedis(config.redis_url, `gateway-${this.id}`, log);
    this.registry = new NodeRegistry(
      this.redis,
      () => this.info,
      { prefix: config.key_prefix, heartbeatMs: config.heartbeat_ms, timeoutMs: config.node_timeout_ms },
      log,
    );
    this.claims = new StreamClaims(this.redis, this.id, { prefix: config.key_prefix, leaseMs: config.lease_ms });
    this.store = new RedisPushStore(this.redis, config.key_prefix);
    this.messenger = new NodeMessenger(this.redis, this.id, config.key_prefix, log);
    this.sealer = new Sealer(this.secret, 'kept pushes');
  }

  get info(): NodeInfo {
    return {
      id: this.id,
      url: this.config.advertise_url.replace(/\/$/, ''),
      startedAt: this.startedAt,
      boot: this.boot,
      draining: this.#draining,
      ...this.#load(),
    };
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Takes no new work from now on, and tells the other nodes at once (they place nothing here). */
  async startDraining(): Promise<void> {
    this.#draining = true;
    await this.registry.beat();
  }

  /** Joins the cluster: waits a while for Redis (a node starts even while it is away, and joins once it is back), then beats. */
  async start(load: () => NodeLoad): Promise<void> {
    this.#load = load;
    if (!(await whenReady(this.redis, 5000)))
      this.log.warn(
        { redis: redactedRedisUrl(this.config.redis_url) },
        'Redis not reachable yet: new publishes are refused until it is',
      );
    await this.#tick();
    this.#timer = setInterval(() => void this.#tick(), this.config.heartbeat_ms);
    this.#timer.unref();
    this.log.info({ node: this.id, advertise: this.info.url }, 'joined the cluster');
  }

  /** One heartbeat and one renewal of the claims; while Redis is away nothing is decided. */
  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      if (!(await this.registry.beat())) return;
      const lost = await this.claims.renew().catch(() => []);
      for (const stream of lost) {
        const holder = await this.claims.holder(stream).catch(() => undefined);
        this.log.warn(
          { stream, holder: holder?.node },
          'another node holds the stream now: this node stops serving it',
        );
        this.onLost(stream, holder?.node);
      }
    } finally {
      this.#ticking = false;
    }
  }

  /** Leaves the cluster: its claims given up, its entry removed, the connection closed. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.claims.held.keys()].map((s) => this.claims.release(s).catch(() => {})));
    await this.registry.stop();
    this.messenger.close();
    this.redis.disconnect();
  }
}
