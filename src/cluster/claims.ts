import { trackSize } from '../core/tracked.js';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { epochLua } from './epoch.js';

/** Who holds a stream: a node, and the fencing token its claim was given. */
export interface Claim {
  node: string;
  /** Grows with every new claim of any stream: a later claim always has a greater token. */
  token: number;
}

// A claim is `<node>|<token>` under the stream's key, with a lease. A free stream takes a new
// token; the holder renews its lease; anyone else is told the holder. `ARGV[3]`, the greatest
// token the caller has seen, keeps tokens growing across a Redis restarted empty.
//
// After Redis lost its data (no epoch, or one made after a loss, younger than a lease), a stream
// nobody holds may still be served by a node that has not claimed it again yet: only that node's
// claim (`ARGV[4]` = 1) is taken then; others are told 'settling'.
const CLAIM = `
local held = redis.call('GET', KEYS[1])
if held then
  if string.sub(held, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return held
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
${epochLua('ARGV[5]', "'1'")}
if ARGV[4] ~= '1' and epochAfterLoss == '1' and now - tonumber(epochSince) < tonumber(ARGV[2]) then return 'settling' end
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[3]) then redis.call('SET', KEYS[2], ARGV[3]) end
local claim = ARGV[1] .. '|' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], claim, 'PX', ARGV[2])
return claim`;

// Renews each claim still held as it was given; 1 renewed, 0 lost (expired, or another's now).
const RENEW = `
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Redis lost its data less than a lease ago: streams nobody holds may still be served by a node that has not claimed them again. */
export class Settling extends Error {
  constructor(readonly leaseMs: number) {
    super('the cluster is settling: its Redis lost its data, and nodes are claiming again what they serve');
  }
}

const parse = (value: string): Claim => {
  const at = value.lastIndexOf('|');
  return { node: value.slice(0, at), token: Number(value.slice(at + 1)) };
};
const text = (claim: Claim): string => `${claim.node}|${claim.token}`;

/**
 * Stream ownership: a stream is held by one node at a time, by an atomic claim with a lease and a
 * fencing token. The holder renews its claims with each heartbeat; a claim not renewed within
 * `leaseMs` (its node killed, or cut from Redis) is free for another node, whose claim has a
 * greater token. When its renewal says a claim was lost, the node must stop serving that stream:
 * another may hold it now.
 */
export class StreamClaims {
  /** The claims this node holds, by stream. */
  readonly #held = new Map<string, Claim>();
  /** The greatest token seen: claims made after a Redis restarted empty still get greater ones. */
  #greatest = 0;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: StreamClaims): void {
    trackSize('cluster_claims', owner, (self) => self.#held.size);
  }

  constructor(
    private readonly redis: Redis,
    readonly node: string,
    private readonly options: { prefix: string; leaseMs: number },
  ) {
    StreamClaims.#trackSizes(this);
  }

  #key(stream: string): string {
    return `${this.options.prefix}stream:${stream}`;
  }

  /**
   * Claims `stream` for this node: the claim that holds it now (this node's, or another's). Throws
   * `Settling` for a stream new to this node in the lease after Redis lost its data, and when Redis
   * is unreachable.
   */
  async claim(stream: string): Promise<Claim & { mine: boolean }> {
    return this.#claim(stream, false);
  }

  async #claim(stream: string, again: boolean): Promise<Claim & { mine: boolean }> {
    const { prefix, leaseMs } = this.options;
    const value = (await this.redis.eval(
      CLAIM,
      3,
      this.#key(stream),
      `${prefix}fence`,
      `${prefix}epoch`,
      this.node,
      String(leaseMs),
      String(this.#greatest),
      again ? '1' : '0',
      randomUUID(),
    )) as string;
    if (value === 'settling') throw new Settling(leaseMs);
    const claim = parse(value);
    this.#greatest = Math.max(this.#greatest, claim.token);
    const mine = claim.node === this.node;
    if (mine) this.#held.set(stream, claim);
    return { ...claim, mine };
  }

  /** Who holds `stream` now, if anyone. */
  async holder(stream: string): Promise<Claim | undefined> {
    const value = await this.redis.get(this.#key(stream));
    return value ? parse(value) : undefined;
  }

  /** The claims this node holds (as it last knew). */
  get held(): ReadonlyMap<string, Claim> {
    return this.#held;
  }

  /**
   * Renews every claim held; the streams whose claim was lost. A claim gone with nothing in its
   * place (Redis restarted empty) is claimed again, and counts as lost only if another node took it
   * first. Throws when Redis is unreachable: nothing is decided then.
   */
  async renew(): Promise<string[]> {
    const streams = [...this.#held.keys()];
    if (!streams.length) return [];
    const renewed = (await this.redis.eval(
      RENEW,
      streams.length,
      ...streams.map((s) => this.#key(s)),
      String(this.options.leaseMs),
      ...streams.map((s) => text(this.#held.get(s)!)),
    )) as number[];
    const lost: string[] = [];
    for (const [i, stream] of streams.entries()) {
      if (renewed[i] === 1) continue;
      const held = this.#held.get(stream)!;
      const now = await this.holder(stream);
      if (now === undefined) {
        // Gone, none in its place: claimed again with a new token (greater than any seen).
        const again = await this.#claim(stream, true);
        if (again.mine) continue;
      } else if (now.node === this.node && now.token === held.token) continue;
      this.#held.delete(stream);
      lost.push(stream);
    }
    return lost;
  }

  /** Gives `stream` up, if this node still holds it. */
  async release(stream: string): Promise<void> {
    const held = this.#held.get(stream);
    if (!held) return;
    this.#held.delete(stream);
    await this.redis.eval(RELEASE, 1, this.#key(stream), text(held));
  }
}
