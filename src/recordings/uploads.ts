import { lstat, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { monotonicMs, wallClockMs } from '../core/clock.js';
import { createOwnFile, readOwnFile } from '../core/own-files.js';
import { trackSize } from '../core/tracked.js';
import { BucketError, type Bucket } from './bucket.js';
import type { UploadEvent } from '../plane/lifecycle.js';

/** Files uploaded at once; the others wait their turn, in the order they were finished. */
const UPLOADS_AT_ONCE = 2;
/** Waits between attempts at one file: from the first, doubling up to the most, each up to 25 % longer. */
const FIRST_WAIT_MS = 1000;
const MOST_WAIT_MS = 5 * 60_000;
/** Credentials refused: the next attempt waits at least this long (an operator has to change something). */
const REFUSED_WAIT_MS = 60_000;
const JITTER = 0.25;

/**
 * What a part's upload file (`.<part>.upload.json`, beside it) holds: written before the upload
 * starts and at each change, so that a gateway stopped or killed meanwhile takes it up at its next
 * start (aborting the multipart upload it had begun), and so that a part deleted from the disk
 * once uploaded is still listed.
 */
export interface UploadRecord {
  key: string;
  /** The bucket it goes to: a part of another bucket (the configuration changed) is not deleted from this one. */
  bucket?: string;
  state: 'queued' | 'uploading' | 'uploaded' | 'failed';
  /** The multipart upload under way, if the store gave one. */
  uploadId?: string;
  error?: string;
  /** Bytes uploaded (once uploaded). */
  size?: number;
  uploadedAt?: string;
  /** Whether the part's file is kept on disk once uploaded. */
  keptLocal?: boolean;
}

/** A part's upload file. */
export const uploadFileOf = (dir: string, part: string): string => join(dir, `.${part}.upload.json`);
/** The part an upload file is of. */
export const UPLOAD_FILE = /^\.(.+-\d{3,}\.mp4)\.upload\.json$/;

export async function readUploadRecord(dir: string, part: string): Promise<UploadRecord | undefined> {
  try {
    return JSON.parse(await readOwnFile(uploadFileOf(dir, part))) as UploadRecord;
  } catch {
    return undefined;
  }
}

/** A finished part to upload, and whose it is (for the events). */
export interface PartToUpload {
  file: string;
  stream: string;
  mediaSessionId: string;
}

export interface UploadCounters {
  uploaded(bytes: number): void;
  failed(): void;
}

/** The uploads' counters; the queue is read when scraped. */
export function uploadMetrics(registry: Registry, queued: () => number): UploadCounters {
  const bytes = new Counter({
    name: 'gateway_recording_upload_bytes_total',
    help: 'Bytes of recordings uploaded to the bucket, confirmed by it',
    registers: [registry],
  });
  const parts = new Counter({
    name: 'gateway_recording_upload_parts_total',
    help: 'Recording parts uploaded to the bucket, confirmed by it',
    registers: [registry],
  });
  const failures = new Counter({
    name: 'gateway_recording_upload_failures_total',
    help: 'Attempts at uploading a recording part that failed (each is tried again)',
    registers: [registry],
  });
  new Gauge({
    name: 'gateway_recording_uploads_queued',
    help: 'Recording parts waiting to be uploaded or being uploaded, failed ones waiting to be tried again included',
    registers: [registry],
    collect() {
      this.set(queued());
    },
  });
  return {
    uploaded: (n) => {
      bytes.inc(n);
      parts.inc();
    },
    failed: () => failures.inc(),
  };
}

interface Pending extends PartToUpload {
  attempt: number;
  /** The multipart upload an attempt began and did not finish: aborted before the next. */
  begun?: { key: string; uploadId: string };
  timer?: NodeJS.Timeout;
}

/**
 * Uploads each finished part of a recording to the bucket while the recording goes on, one file
 * per multipart upload, `UPLOADS_AT_ONCE` at a time. A part is deleted from the disk only once the
 * bucket holds all its bytes (and kept, if the configuration says so); a failed attempt is tried
 * again, waiting longer each time, for as long as the gateway runs, and at its next start: nothing
 * is lost. Each part's progress is in its upload file (`UploadRecord`).
 */
export class RecordingUploads {
  /** Every part not yet uploaded: waiting its turn, waiting to be tried again, or being uploaded. */
  readonly #pending = new Map<string, Pending>();
  readonly #waiting: Pending[] = [];
  readonly #running = new Map<string, AbortController>();
  readonly #done = new Set<Promise<void>>();
  /** Each part's upload file written in turn. */
  readonly #writes = new Map<string, Promise<boolean>>();
  #closed = false;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: RecordingUploads): void {
    trackSize('recording_uploads', owner, (self) => self.#pending.size);
  }

  constructor(
    private readonly bucket: Bucket,
    private readonly dir: string,
    private readonly fileMode: number,
    private readonly counters: UploadCounters,
    private readonly tell: (event: UploadEvent) => void,
    private readonly log: Logger,
    /** Run once a part is in the bucket, before its file is deleted (`record_hook`, given its key). */
    private readonly afterUpload: (part: PartToUpload, path: string, key: string) => Promise<void> = async () => {},
    private readonly random: () => number = Math.random,
  ) {
    RecordingUploads.#trackSizes(this);
  }

  /** Parts not yet uploaded, being uploaded included. */
  get queued(): number {
    return this.#pending.size;
  }

  /** Whether the part is on its way to the bucket (its upload file tells the rest). */
  has(file: string): boolean {
    return this.#pending.has(file);
  }

  get keepLocal(): boolean {
    return this.bucket.settings.keep_local;
  }

  /**
   * Takes up what an earlier run left: each part of `parts` (the finished ones of recordings that
   * upload) not yet in the bucket is uploaded again from its start, the multipart upload that run
   * had begun aborted first.
   */
  async resume(parts: readonly PartToUpload[]): Promise<void> {
    for (const part of parts) {
      const record = await readUploadRecord(this.dir, part.file);
      if (record?.state === 'uploaded') continue;
      await this.add(part, record?.uploadId === undefined ? undefined : { key: record.key, uploadId: record.uploadId });
    }
  }

  /** A part finished: uploaded in its turn (`begun`: a multipart upload an earlier attempt left, aborted first). */
  async add(part: PartToUpload, begun?: { key: string; uploadId: string }): Promise<void> {
    if (this.#closed || this.#pending.has(part.file)) return;
    const pending: Pending = { ...part, attempt: 0, ...(begun ? { begun } : {}) };
    this.#pending.set(part.file, pending);
    await this.#record(part.file, { key: this.bucket.key(part.file), state: 'queued', ...begun });
    this.#waiting.push(pending);
    this.#next();
  }

  /** Aborts the uploads under way (their parts stay queued on disk for the next start), and waits for them. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const pending of this.#pending.values()) clearTimeout(pending.timer);
    for (const controller of this.#running.values()) controller.abort();
    await Promise.all(this.#done);
    this.bucket.close();
  }

  #next(): void {
    while (!this.#closed && this.#running.size < UPLOADS_AT_ONCE && this.#waiting.length) {
      const pending = this.#waiting.shift()!;
      const controller = new AbortController();
      this.#running.set(pending.file, controller);
      const done = this.#upload(pending, controller.signal).finally(() => {
        this.#running.delete(pending.file);
        this.#done.delete(done);
        this.#next();
      });
      this.#done.add(done);
    }
  }

  async #upload(pending: Pending, signal: AbortSignal): Promise<void> {
    const { file } = pending;
    const path = join(this.dir, file);
    const key = this.bucket.key(file);
    const startedAt = monotonicMs();
    pending.attempt++;
    const info = await lstat(path).catch(() => undefined);
    if (!info?.isFile()) {
      // Deleted meanwhile (by hand): there is nothing left to upload, nor to list.
      this.#pending.delete(file);
      this.log.error({ file }, 'a recording part to upload is no longer on disk');
      await unlink(uploadFileOf(this.dir, file)).catch(() => {});
      return;
    }
    const size = info.size;
    const bucket = this.bucket.name;
    try {
      if (pending.begun) await this.#abortBegun(pending);
      await this.#record(file, { key, bucket, state: 'uploading' });
      const onUploadId = (uploadId: string): void => {
        pending.begun = { key, uploadId };
        void this.#record(file, { key, bucket, state: 'uploading', uploadId });
      };
      await this.bucket.upload(path, key, size, onUploadId, signal);
      pending.begun = undefined; // completed: nothing left to abort
      await this.#confirm(key, size);
      await this.#uploadCaptions(file, signal);
    } catch (error) {
      if (signal.aborted) return; // closing: the upload file says `uploading`, taken up at the next start
      return this.#failed(pending, key, size, startedAt, this.bucket.explain(error));
    }
    const keptLocal = this.keepLocal;
    const recorded = await this.#record(file, {
      key,
      bucket,
      state: 'uploaded',
      size,
      uploadedAt: new Date(wallClockMs()).toISOString(),
      keptLocal,
    });
    this.counters.uploaded(size);
    const tookMs = monotonicMs() - startedAt;
    this.log.info({ file, key, size, tookMs }, 'recording part uploaded');
    this.tell({ type: 'recording.uploaded', ...this.#about(pending), bucket, key, size, tookMs });
    if (!this.#closed) await this.afterUpload(pending, path, key);
    // Deleted only once its record says uploaded: a part whose record could not be written (a full
    // disk) stays, listed as it was, and is sent again at the next start.
    if (!keptLocal && recorded)
      await Promise.all([path, path.replace(/\.mp4$/, '.vtt')].map((p) => unlink(p).catch(() => {})));
    // Only now: until its hook has run and its file is gone, a delete request or retention leaves it.
    this.#pending.delete(file);
  }

  /** The bucket holds all `size` bytes at `key`, or a `BucketError` says what it holds. */
  async #confirm(key: string, size: number): Promise<void> {
    const held = await this.bucket.sizeOf(key);
    if (held !== size)
      throw new BucketError(`the bucket holds ${held ?? 'no'} bytes of the ${size} sent`, 'record_s3.endpoint', true);
  }

  /** Aborts the multipart upload an earlier attempt (or run) began, so that its pieces are not kept and billed. */
  async #abortBegun(pending: Pending): Promise<void> {
    const { key, uploadId } = pending.begun!;
    await this.bucket
      .abort(key, uploadId)
      .catch((error: unknown) =>
        this.log.warn(
          { file: pending.file, reason: this.bucket.explain(error).message },
          'an upload begun earlier could not be aborted: the bucket lifecycle rule will',
        ),
      );
    pending.begun = undefined;
  }

  /** A part's captions (its WebVTT, when it has one) go beside it in the bucket. */
  async #uploadCaptions(file: string, signal: AbortSignal): Promise<void> {
    const captions = file.replace(/\.mp4$/, '.vtt');
    const info = await lstat(join(this.dir, captions)).catch(() => undefined);
    if (!info?.isFile()) return;
    await this.bucket.upload(join(this.dir, captions), this.bucket.key(captions), info.size, () => {}, signal);
    await this.#confirm(this.bucket.key(captions), info.size);
  }

  async #failed(pending: Pending, key: string, size: number, startedAt: number, error: BucketError): Promise<void> {
    const reason = error.message;
    const refused = error.field === 'record_s3.access_key_id';
    const backoff = FIRST_WAIT_MS * 2 ** (pending.attempt - 1);
    const wait = Math.min(MOST_WAIT_MS, Math.max(refused ? REFUSED_WAIT_MS : 0, backoff));
    const inMs = Math.round(wait * (1 + JITTER * this.random()));
    await this.#record(pending.file, {
      key,
      bucket: this.bucket.name,
      state: 'failed',
      error: reason,
      ...(pending.begun ? { uploadId: pending.begun.uploadId } : {}),
    });
    this.counters.failed();
    this.log.warn({ file: pending.file, key, reason, attempt: pending.attempt, inMs }, 'recording part upload failed');
    this.tell({
      type: 'recording.upload_failed',
      ...this.#about(pending),
      bucket: this.bucket.name,
      key,
      size,
      tookMs: monotonicMs() - startedAt,
      reason,
      field: error.field,
    });
    if (this.#closed) return;
    pending.timer = setTimeout(() => {
      pending.timer = undefined;
      this.#waiting.push(pending);
      this.#next();
    }, inMs);
    pending.timer.unref();
  }

  #about(pending: Pending): Pick<UploadEvent, 'file' | 'stream' | 'mediaSessionId' | 'attempt'> {
    return {
      file: pending.file,
      stream: pending.stream,
      mediaSessionId: pending.mediaSessionId,
      attempt: pending.attempt,
    };
  }

  /**
   * Writes a part's upload file anew, in the order asked: a file of the gateway's own made beside it,
   * then renamed over it (never written through a link; a gateway killed meanwhile leaves the old one).
   */
  #record(file: string, record: UploadRecord): Promise<boolean> {
    const path = uploadFileOf(this.dir, file);
    const write = async (): Promise<boolean> => {
      const temporary = `${path}.new`;
      await unlink(temporary).catch(() => {});
      await createOwnFile(temporary, JSON.stringify(record), this.fileMode);
      await rename(temporary, path);
      return true;
    };
    const written = (this.#writes.get(file) ?? Promise.resolve(true)).then(write).catch((error: Error) => {
      this.log.error({ file, reason: error.message }, 'the upload file of a recording part could not be written');
      return false;
    });
    this.#writes.set(file, written);
    void written.then(() => {
      if (this.#writes.get(file) === written) this.#writes.delete(file);
    });
    return written;
  }
}
