import { mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createOwnFile, openOwnFile } from '../core/own-files.js';
import { trackSize } from '../core/tracked.js';
import { compactTime, safeStreamName } from '../links/record-names.js';

/** What the thumbnails are taken from: the plane's streams, and its snapshots within what snapshots may spend. */
export interface ThumbnailSource {
  /** Every stream, with its publish's id, its state and how many keyframes it has had. */
  streams(): Promise<{ name: string; id: string; state: string; keyframes: number }[]>;
  /** The JPEG of the stream's latest keyframe, thumbnail-sized (decoded once per keyframe where the stream runs). */
  snapshot(name: string): Promise<Buffer>;
}

/** Thumbnail files: the gateway's user reads and writes them, its group reads them (as recordings by default). */
const FILE_MODE = 0o640;

export type ThumbnailNaming = 'latest' | 'numbered';

export interface ThumbnailSettings {
  intervalS: number;
  /** The streams that get thumbnails; empty: every stream. */
  streams: readonly string[];
  dir: string;
  naming: ThumbnailNaming;
  /** Numbered thumbnails kept per stream. */
  keep: number;
  /** Snapshots asked for at once: each holder decodes those it is asked for together. */
  concurrency: number;
  /** Where each is put besides (`thumbnail_upload`: the recordings' bucket), by its file's name. */
  bucket?: ThumbnailBucket;
}

/** A bucket thumbnails are put in, and numbered ones beyond the number kept deleted from. */
interface ThumbnailBucket {
  put(file: string, jpeg: Buffer): Promise<void>;
  remove(file: string): Promise<void>;
}

export interface Thumbnail {
  jpeg: Buffer;
  /** When it was written (wall clock): its `Last-Modified`. */
  at: Date;
}

/** Per stream: which keyframe its thumbnail shows, the thumbnail, its numbered files (oldest first), the errors told. */
interface StreamThumbnails {
  keyframe?: string;
  latest?: Thumbnail;
  numbered?: string[];
  told: Set<string>;
}

/** A thumbnail's file name: `<stream>.jpg` replaced each time, or `<stream>-<UTC compact time>.jpg` one per thumbnail. */
export function thumbnailFileName(stream: string, naming: ThumbnailNaming, at: Date): string {
  // A leading `.` or `-` becomes `_`: no hidden file (the temporary ones are), no option-like name.
  const safe = safeStreamName(stream).replace(/^[.-]/, '_');
  return naming === 'latest' ? `${safe}.jpg` : `${safe}-${compactTime(at)}.jpg`;
}

/** Whether `file` is one of the stream's numbered thumbnails (and not another stream's whose name starts alike). */
function isNumberedOf(stream: string, file: string): boolean {
  const safe = thumbnailFileName(stream, 'latest', new Date(0)).slice(0, -'.jpg'.length);
  return file.startsWith(`${safe}-`) && /^-\d{8}T\d{6}Z\.jpg$/.test(file.slice(safe.length));
}

/**
 * A JPEG of each publishing stream's latest keyframe, written into `thumbnail_dir` every interval
 * and kept in memory for `GET /rest-api/stream/thumbnail`. A stream is only asked for a snapshot when
 * it has had a keyframe since its last thumbnail (its publish's id and keyframe count say so), so an
 * unchanged stream costs nothing; up to `concurrency` are asked for at once, and the holder of a
 * stream decodes each keyframe once for everybody, those asked for together in one ffmpeg
 * (`KeyframePictures`). A stream that ends is forgotten in memory, but its last files stay
 * on disk (the `latest` file still answers the GET). Errors are logged once per stream and kind,
 * never thrown: the next interval tries again.
 */
export class Thumbnailer {
  readonly #streams = new Map<string, StreamThumbnails>();
  /** Errors not of one stream (the list of streams, the folder), told once each. */
  readonly #told = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #closed = false;

  /** Counts its map in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: Thumbnailer): void {
    trackSize('thumbnail_streams', owner, (self) => self.#streams.size);
  }

  constructor(
    private readonly source: ThumbnailSource,
    private readonly settings: ThumbnailSettings,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    Thumbnailer.#trackSizes(this);
  }

  /** Takes thumbnails every `intervalS` seconds from now on; nothing when it is 0. */
  start(): void {
    if (this.settings.intervalS === 0 || this.#closed || this.#timer) return;
    this.#timer = setInterval(() => void this.round(), this.settings.intervalS * 1000);
    this.#timer.unref();
  }

  get enabled(): boolean {
    return this.settings.intervalS > 0;
  }

  /** One pass over the streams; a pass still running when the next is due is not doubled, that one is skipped. */
  round(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#round ??= this.#pass().finally(() => (this.#round = undefined));
    return this.#round;
  }

  async #pass(): Promise<void> {
    let streams: Awaited<ReturnType<ThumbnailSource['streams']>>;
    try {
      await mkdir(this.settings.dir, { recursive: true });
    } catch (error) {
      this.#tellOnce(this.#told, undefined, 'folder', error as Error);
      return;
    }
    try {
      streams = await this.source.streams();
    } catch (error) {
      this.#tellOnce(this.#told, undefined, 'list of streams', error as Error);
      return;
    }
    this.#told.clear(); // a failure that comes back after a good pass is told again
    const wanted = this.settings.streams;
    const publishing = streams.filter(
      (s) => s.state === 'publishing' && (wanted.length === 0 || wanted.includes(s.name)),
    );
    const names = new Set(publishing.map((s) => s.name));
    for (const name of this.#streams.keys()) if (!names.has(name)) this.#streams.delete(name);
    const due = publishing.filter(
      (s) => s.keyframes > 0 && this.#streams.get(s.name)?.keyframe !== `${s.id}:${s.keyframes}`,
    );
    const next = (): (typeof due)[number] | undefined => due.shift();
    const worker = async (): Promise<void> => {
      for (let stream = next(); stream && !this.#closed; stream = next()) await this.#take(stream);
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, due.length) }, worker));
  }

  /** The stream's thumbnail taken and written; an error told once. */
  async #take(stream: { name: string; id: string; keyframes: number }): Promise<void> {
    let entry = this.#streams.get(stream.name);
    if (!entry) {
      entry = { told: new Set() };
      this.#streams.set(stream.name, entry);
    }
    let jpeg: Buffer;
    try {
      jpeg = await this.source.snapshot(stream.name);
    } catch (error) {
      this.#tellOnce(entry.told, stream.name, 'snapshot', error as Error);
      return;
    }
    const at = this.now();
    try {
      await this.#write(stream.name, entry, jpeg, at);
    } catch (error) {
      return this.#tellOnce(entry.told, stream.name, 'write', error as Error);
    }
    const { bucket, naming } = this.settings;
    // In the bucket too: a failure is told, and the next keyframe's thumbnail put there again.
    const put = await bucket?.put(thumbnailFileName(stream.name, naming, at), jpeg).then(
      () => true,
      (error: Error) => (this.#tellOnce(entry.told, stream.name, 'upload', error), false),
    );
    // Gone meanwhile: not brought back into memory.
    if (this.#streams.get(stream.name) !== entry || put === false) return;
    entry.keyframe = `${stream.id}:${stream.keyframes}`;
    entry.latest = { jpeg, at };
  }

  /** Written aside under a hidden name, then renamed: a reader sees the old picture or the new one, never half. */
  async #write(name: string, entry: StreamThumbnails, jpeg: Buffer, at: Date): Promise<void> {
    const { dir, naming, keep } = this.settings;
    const file = thumbnailFileName(name, naming, at);
    const aside = join(dir, `.${file}.writing`);
    // Created anew (a link planted at the name is not followed); one a stopped run left is removed first.
    await rm(aside, { force: true });
    await createOwnFile(aside, jpeg, FILE_MODE);
    await rename(aside, join(dir, file));
    if (naming === 'latest') return;
    // The stream's numbered files are listed once, when it is first seen; then followed in memory.
    entry.numbered ??= (await readdir(dir)).filter((f) => isNumberedOf(name, f) && f !== file).sort();
    if (entry.numbered.at(-1) !== file) entry.numbered.push(file); // two in the same second: one file
    while (entry.numbered.length > keep) {
      const oldest = entry.numbered.shift()!;
      await unlink(join(dir, oldest)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await this.settings.bucket?.remove(oldest);
    }
  }

  #tellOnce(told: Set<string>, stream: string | undefined, kind: string, error: Error): void {
    // By the error's code (a GatewayError's, a system call's), not its text: the set stays a few entries.
    const key = `${kind}:${(error as { code?: string }).code ?? 'other'}`;
    if (told.has(key)) return;
    told.add(key);
    this.log.warn(
      { stream, reason: error.message },
      `thumbnail: ${kind} failed (told once for this ${stream ? 'stream' : 'gateway'})`,
    );
  }

  /**
   * The stream's latest thumbnail: this run's from memory, or the newest file on disk (one an ended
   * stream left, or an earlier run); undefined when there is none, or thumbnails are off.
   */
  async latest(name: string): Promise<Thumbnail | undefined> {
    if (!this.enabled) return undefined;
    const wanted = this.settings.streams;
    if (wanted.length > 0 && !wanted.includes(name)) return undefined;
    const kept = this.#streams.get(name)?.latest;
    if (kept) return kept;
    const { dir, naming } = this.settings;
    try {
      const file =
        naming === 'latest'
          ? thumbnailFileName(name, 'latest', new Date(0))
          : (await readdir(dir))
              .filter((f) => isNumberedOf(name, f))
              .sort()
              .at(-1);
      if (file === undefined) return undefined;
      const { handle } = await openOwnFile(join(dir, file));
      try {
        const [jpeg, stats] = await Promise.all([handle.readFile(), handle.stat()]);
        return { jpeg, at: stats.mtime };
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Stops taking thumbnails; a pass under way ends first. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#round;
    this.#streams.clear();
  }
}
