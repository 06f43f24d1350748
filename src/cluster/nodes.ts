import { wallClockMs } from '../core/clock.js';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { epochLua } from './epoch.js';

/**
 * What a node tells of itself with each heartbeat. Read from nodes of other releases too: a field
 * a later one adds is dropped, not a reason to leave the node out.
 */
export const nodeInfoSchema = z.object({
  id: z.string(),
  /** Where the other nodes reach its HTTP API (forwarded calls, placed publishes). */
  url: z.string(),
  startedAt: z.string(),
  /**
   * This run of the node, made anew at each start: a call names the run it is for, so one captured
   * before a restart is refused after it (its nonce is no longer remembered). Absent from nodes of
   * earlier releases.
   */
  boot: z.string().optional(),
  /** Draining: it takes no new work. */
  draining: z.boolean(),
  publishers: z.number(),
  /** Its pushes (the name nodes of every release read and write). */
  transponders: z.number(),
  /** Why it takes no new work now (its overload measure), or undefined. */
  overload: z.string().optional(),
});
export type NodeInfo = z.infer<typeof nodeInfoSchema>;
/** A node as the registry lists it: what it told, and how long ago. */
export type ListedNode = NodeInfo & { heardAgoMs: number };

export interface NodeRegistryOptions {
  /** Key prefix of the cluster's keys (several clusters may share one Redis). */
  prefix: string;
  heartbeatMs: number;
  /** A node not heard from for this long is gone. */
  timeoutMs: number;
}

// Times are Redis's own (TIME), so that nodes whose clocks disagree still agree on who is gone.
// Also returns the cluster's epoch (epoch.ts), made by a node that knew the one before as made after a loss.
const HEARTBEAT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
${epochLua('ARGV[4]', 'ARGV[5]')}
return epoch`;

const LIST = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return {now, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')}`;

/**
 * The cluster's nodes: each registers with a heartbeat telling its load, and is gone from the list
 * once `timeoutMs` passes without one (a node killed outright, or cut from Redis). A node that
 * leaves on purpose says so at once. While Redis is unreachable the heartbeats fail and are logged
 * once; when it is back (even empty) the next heartbeat registers the node again.
 */
export class NodeRegistry {
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #lastBeat = 0;
  #epoch: string | undefined;
  /** Told when a heartbeat finds Redis's data gone since the last one (Redis restarted empty). */
  onEmptied: () => void = () => {};

  constructor(
    private readonly redis: Redis,
    private readonly self: () => NodeInfo,
    private readonly options: NodeRegistryOptions,
    private readonly log: Logger,
  ) {}

  get #nodes(): string {
    return `${this.options.prefix}nodes`;
  }
  #node(id: string): string {
    return `${this.options.prefix}node:${id}`;
  }

  /** Registers now, then beats every `heartbeatMs`; resolves after the first heartbeat (which may fail: Redis down). */
  async start(): Promise<void> {
    this.#timer = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.#timer.unref();
    await this.beat();
  }

  /** One heartbeat; true when Redis took it. */
  async beat(): Promise<boolean> {
    this.#beating ??= (async () => {
      const info = this.self();
      const epoch = String(
        await this.redis.eval(
          HEARTBEAT,
          3,
          this.#nodes,
          this.#node(info.id),
          `${this.options.prefix}epoch`,
          info.id,
          String(this.options.timeoutMs),
          JSON.stringify(nodeInfoSchema.parse(info)),
          randomUUID(),
          this.#epoch === undefined ? '0' : '1',
        ),
      );
      this.#lastBeat = wallClockMs();
      const before = this.#epoch;
      this.#epoch = epoch;
      if (before !== undefined && before !== epoch) {
        this.log.warn('Redis came back without its data: what this node keeps is written again');
        this.onEmptied();
      }
    })().finally(() => (this.#beating = undefined));
    return this.#beating.then(
      () => true,
      () => false,
    );
  }

  /** When Redis last took this node's heartbeat (this process's clock), 0 if never. */
  get lastBeat(): number {
    return this.#lastBeat;
  }

  /** The nodes alive now, by id. Throws when Redis is unreachable. */
  async list(): Promise<ListedNode[]> {
    const [now, flat] = (await this.redis.eval(LIST, 1, this.#nodes)) as [number, string[]];
    const ids: string[] = [];
    const expires: number[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      ids.push(flat[i]!);
      expires.push(Number(flat[i + 1]));
    }
    if (!ids.length) return [];
    const infos = await this.redis.mget(ids.map((id) => this.#node(id)));
    const nodes: ListedNode[] = [];
    infos.forEach((raw, i) => {
      if (!raw) return; // its entry expired between the two reads
      const parsed = nodeInfoSchema.safeParse(JSON.parse(raw));
      if (!parsed.success)
        return this.log.warn({ node: ids[i] }, 'a node told what this version does not read: left out');
      nodes.push({ ...parsed.data, heardAgoMs: Math.max(0, now - (expires[i]! - this.options.timeoutMs)) });
    });
    return nodes.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Stops beating and leaves the list at once (a node stopping on purpose). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#beating?.catch(() => {});
    const id = this.self().id;
    await Promise.all([this.redis.zrem(this.#nodes, id), this.redis.del(this.#node(id))]).catch(() => {});
  }
}
