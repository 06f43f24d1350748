import { trackSize } from '../core/tracked.js';
import { createHash } from 'node:crypto';
import { constants, type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { appendOwnFile, readOwnFile } from '../core/own-files.js';
import { z } from 'zod';

/**
 * A push as it is kept: what it was asked to be, sealed (`sealed`: the startup request with its
 * destination, and its audio commands since), and in the clear only what finds it: its id, its
 * stream, who started it and when.
 */
export const storedPushSchema = z.strictObject({
  id: z.string().min(1).max(64),
  stream: z.string().min(1).max(256),
  startedBy: z.string().max(80),
  createdAt: z.string(),
  sealed: z.string().min(1),
});
export type StoredPush = z.infer<typeof storedPushSchema>;

/** Where push definitions are kept: a file on one machine, Redis in a cluster. */
export interface PushStore {
  /** Every push kept. */
  all(): Promise<StoredPush[]>;
  /** The pushes kept of one stream. */
  ofStream(stream: string): Promise<StoredPush[]>;
  /** One push kept, if it is. */
  get(id: string): Promise<StoredPush | undefined>;
  /** Keeps `push` (replacing one of its id); resolves once it is durable. */
  put(push: StoredPush): Promise<void>;
  /** Forgets the push `id`; resolves once that is durable. */
  remove(id: string): Promise<void>;
  close(): Promise<void>;
}

const recordSchema = z.union([z.strictObject({ put: storedPushSchema }), z.strictObject({ del: z.string() })]);
type LogRecord = z.infer<typeof recordSchema>;

/** Rewritten at open, and when it holds this many more records than pushes kept. */
const COMPACT_SLACK = 256;

const checksum = (json: string): string => createHash('sha256').update(json).digest('hex').slice(0, 16);
const line = (record: LogRecord): string => {
  const json = JSON.stringify(record);
  return `${checksum(json)} ${json}\n`;
};

/**
 * Push definitions in an append-only file, one record a line (`<checksum> <json>`), each write
 * flushed to the disk (`fdatasync`) before it is acknowledged. A process killed in the middle of a
 * write leaves at most its last line torn: at the next open the file is read up to the first line
 * whose checksum does not match, cut there, and rewritten whole (a new file flushed, then renamed
 * over the old, then the folder flushed), so a kill during that rewrite leaves the old file or the
 * new, never half of one. One process holds the file at a time (`.lock` holds its PID).
 */
export class FilePushStore implements PushStore {
  readonly #pushes = new Map<string, StoredPush>();
  #records = 0;
  #handle: FileHandle | undefined;
  /** Writes, one after another in the order asked. */
  #queue: Promise<void> = Promise.resolve();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: FilePushStore): void {
    trackSize('push_log', owner, (self) => self.#pushes.size);
  }

  private constructor(
    readonly path: string,
    /** What the open found: records cut from a torn end. */
    readonly recovered: { records: number; droppedBytes: number },
  ) {
    FilePushStore.#trackSizes(this);
  }

  static async open(path: string): Promise<FilePushStore> {
    await lock(`${path}.lock`);
    try {
      await rm(`${path}.new`, { force: true }); // a rewrite killed before its rename
      const text = await readOwnFile(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return '';
        throw error;
      });
      const { records, goodBytes } = readRecords(text);
      const store = new FilePushStore(path, {
        records: records.length,
        droppedBytes: Buffer.byteLength(text) - goodBytes,
      });
      for (const record of records) store.#apply(record);
      await store.#rewrite();
      return store;
    } catch (error) {
      await rm(`${path}.lock`, { force: true });
      throw error;
    }
  }

  async all(): Promise<StoredPush[]> {
    return [...this.#pushes.values()];
  }

  async ofStream(stream: string): Promise<StoredPush[]> {
    return [...this.#pushes.values()].filter((p) => p.stream === stream);
  }

  async get(id: string): Promise<StoredPush | undefined> {
    return this.#pushes.get(id);
  }

  put(push: StoredPush): Promise<void> {
    return this.#write({ put: storedPushSchema.parse(push) });
  }

  remove(id: string): Promise<void> {
    // Decided in turn: a put asked just before is written first.
    return this.#write({ del: id }, () => this.#pushes.has(id));
  }

  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    await this.#handle?.close();
    this.#handle = undefined;
    await rm(`${this.path}.lock`, { force: true });
  }

  #apply(record: LogRecord): void {
    this.#records++;
    if ('put' in record) this.#pushes.set(record.put.id, record.put);
    else this.#pushes.delete(record.del);
  }

  /** Appends `record` after the writes before it, if `wanted` still holds then. */
  #write(record: LogRecord, wanted = (): boolean => true): Promise<void> {
    const written = this.#queue.then(async () => {
      if (!this.#handle) throw new Error('the push store is closed');
      if (!wanted()) return;
      await this.#handle.appendFile(line(record));
      await this.#handle.datasync();
      this.#apply(record);
      if (this.#records > this.#pushes.size + COMPACT_SLACK) await this.#rewrite();
    });
    this.#queue = written.catch(() => {});
    return written;
  }

  /** Writes the pushes kept to a new file and puts it in the old one's place. */
  async #rewrite(): Promise<void> {
    await this.#handle?.close();
    // Made anew (a link or file left at that name is removed first, never written through).
    await rm(`${this.path}.new`, { force: true });
    const fresh = await open(
      `${this.path}.new`,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      await fresh.writeFile([...this.#pushes.values()].map((push) => line({ put: push })).join(''));
      await fresh.datasync();
    } finally {
      await fresh.close();
    }
    await rename(`${this.path}.new`, this.path);
    await syncFolder(dirname(this.path));
    this.#records = this.#pushes.size;
    this.#handle = await appendOwnFile(this.path);
  }
}

/** The records of a log up to the first line that is torn or altered, and how many bytes those take. */
export function readRecords(text: string): { records: LogRecord[]; goodBytes: number } {
  const records: LogRecord[] = [];
  let goodBytes = 0;
  for (const raw of text.split(/(?<=\n)/)) {
    if (!raw.endsWith('\n')) break; // a line whose end was never written
    const match = /^([0-9a-f]{16}) (.*)\n$/s.exec(raw);
    if (!match || checksum(match[2]!) !== match[1]) break;
    let parsed: unknown;
    try {
      parsed = JSON.parse(match[2]!);
    } catch {
      break;
    }
    const record = recordSchema.safeParse(parsed);
    if (!record.success) break;
    records.push(record.data);
    goodBytes += Buffer.byteLength(raw);
  }
  return { records, goodBytes };
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Takes `path` as this process's lock; one left by a process no longer running is taken over. */
async function lock(path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      await handle.writeFile(String(process.pid));
      await handle.close();
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number((await readOwnFile(path).catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && running(holder)) {
      throw new Error(`${path}: the push store is in use by process ${holder}`);
    }
    await rm(path, { force: true });
  }
  throw new Error(`${path}: could not take the push store's lock`);
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
