import type { Redis } from 'ioredis';
import { storedPushSchema, type PushStore, type StoredPush } from './push-log.js';

/** A transaction's replies: throws the first error among them (or when it was discarded). */
function checked(replies: [Error | null, unknown][] | null): void {
  if (!replies) throw new Error('the Redis transaction was discarded');
  const failed = replies.find(([error]) => error);
  if (failed) throw failed[0]!;
}

/**
 * Push definitions in the cluster's Redis, which every node reads: each push under
 * `<prefix>push:<id>` (the stored record, its destination sealed), the ids in `<prefix>pushes`,
 * and each stream's in `<prefix>pushes:<stream>` (what a node reads when the stream publishes).
 * A write is acknowledged once Redis took it; how long Redis keeps it is Redis's persistence
 * (`appendonly yes` for a restart of Redis itself).
 */
export class RedisPushStore implements PushStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  #key(id: string): string {
    return `${this.prefix}push:${id}`;
  }
  get #ids(): string {
    return `${this.prefix}pushes`;
  }
  #ofStream(stream: string): string {
    return `${this.prefix}pushes:${stream}`;
  }

  async all(): Promise<StoredPush[]> {
    return this.#read(await this.redis.smembers(this.#ids));
  }

  async ofStream(stream: string): Promise<StoredPush[]> {
    return this.#read(await this.redis.smembers(this.#ofStream(stream)));
  }

  async get(id: string): Promise<StoredPush | undefined> {
    return (await this.#read([id]))[0];
  }

  async #read(ids: string[]): Promise<StoredPush[]> {
    if (!ids.length) return [];
    const values = await this.redis.mget(ids.map((id) => this.#key(id)));
    const pushes: StoredPush[] = [];
    for (const value of values) {
      if (!value) continue;
      const parsed = storedPushSchema.safeParse(JSON.parse(value));
      if (parsed.success) pushes.push(parsed.data);
    }
    return pushes;
  }

  async put(push: StoredPush): Promise<void> {
    const record = storedPushSchema.parse(push);
    checked(
      await this.redis
        .multi()
        .set(this.#key(record.id), JSON.stringify(record))
        .sadd(this.#ids, record.id)
        .sadd(this.#ofStream(record.stream), record.id)
        .exec(),
    );
  }

  async remove(id: string): Promise<void> {
    const record = await this.get(id);
    const removal = this.redis.multi().del(this.#key(id)).srem(this.#ids, id);
    if (record) removal.srem(this.#ofStream(record.stream), id);
    checked(await removal.exec());
  }

  /** The connection is the cluster's: it is closed with it. */
  async close(): Promise<void> {}
}
