import { trackSize } from '../core/tracked.js';
import { wallClockMs } from '../core/clock.js';
import type { FileHandle } from 'node:fs/promises';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { conflict, notFound } from '../core/errors.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import { openOwnFile, readOwnFile } from '../core/own-files.js';
import { listedParts, PART_FILE, recordingFiles, type RecordingAbout } from '../links/record-link.js';
import { reclaimLeftovers } from './leftovers.js';
import type { Bucket } from './bucket.js';
import type { RecordHook } from './record-hook.js';
import { readUploadRecord, UPLOAD_FILE, uploadFileOf, type RecordingUploads, type UploadRecord } from './uploads.js';
import type { GatewayConfig } from '../config/schema.js';
import { ROOT } from '../core/paths.js';
import { resolve } from 'node:path';

/** How often retention is applied, besides after each finished part (ms). */
const SWEEP_MS = 60_000;

const recordingFileSchema = z
  .string()
  .max(200)
  .regex(/^[\w][\w.-]*-\d{3,}\.mp4$/, 'must be the name of a recording file (as recording/find_all lists it)');
export const recordingFindSchema = z.strictObject({ streamName: z.string().min(1).max(128).optional() });
export const recordingFileRequestSchema = z.strictObject({ fileName: recordingFileSchema });
/** A file to download: a part, or the WebVTT of its captions. */
export const recordingDownloadSchema = z.strictObject({
  fileName: z
    .string()
    .max(200)
    .regex(
      /^[\w][\w.-]*-\d{3,}\.(mp4|vtt)$/,
      'must be the name of a recording file or of its captions (as recording/find_all lists them)',
    ),
});

/** The WebVTT file of a part's captions. */
const captionsFileOf = (part: string): string => part.replace(/\.mp4$/, '.vtt');

export const recordingSchema = z.strictObject({
  fileName: z.string(),
  streamName: z.string(),
  mediaSessionId: z.string().describe('the push (`record://`) that recorded it'),
  startedAt: z.string().describe('when the part began (ISO 8601)'),
  durationMs: z
    .number()
    .nullable()
    .describe(
      'null while recording, or when the part was cut short (the gateway or ffmpeg killed): it plays up to its last keyframe',
    ),
  size: z.number().describe('bytes'),
  state: z.enum(['recording', 'finished', 'interrupted']),
  captionsFile: z
    .string()
    .nullable()
    .describe("the WebVTT beside it with its video's captions, once it is finished (null: none)"),
  storage: z
    .strictObject({
      state: z.enum(['local', 'queued', 'uploading', 'uploaded', 'failed']),
      bucket: z.string().optional(),
      key: z.string().optional().describe("the object's key in the bucket"),
      error: z.string().optional().describe('why the last attempt failed (it is tried again)'),
      local: z.boolean().describe('whether the file is on this node (an uploaded part may be kept or not)'),
    })
    .describe('where the part is kept: on this node only, on its way to the bucket, or in it (record_s3)'),
});
export type Recording = z.infer<typeof recordingSchema>;

/** The bucket a node's recordings are uploaded to (`record_s3`), and its uploads. */
export interface RecordingStore {
  bucket: Bucket;
  uploads: RecordingUploads;
}

export interface RecordingRetention {
  /** Finished parts older than this are deleted (0: kept). */
  maxAgeHours: number;
  /** While finished parts take more than this, the oldest go (0: no limit). */
  maxMb: number;
}

/**
 * The recordings in `record_dir`, as files: listed with what their recording wrote beside them (who
 * it is of, ffmpeg's list of finished parts), downloaded, deleted, and kept within the retention
 * rules. Which parts are being written it learns from the lifecycle events of this node's plane;
 * a part neither being written nor in ffmpeg's list was cut short (`interrupted`). A part being
 * written is never deleted.
 */
export class RecordingLibrary {
  readonly #writing = new Set<string>();
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: RecordingLibrary): void {
    trackSize('recordings_writing', owner, (self) => self.#writing.size);
  }

  /** This node's recordings as the configuration says: `record_dir`, its retention and file mode, its bucket. */
  static fromConfig(config: GatewayConfig, log: Logger, store?: RecordingStore, hook?: RecordHook): RecordingLibrary {
    return new RecordingLibrary(
      resolve(ROOT, config.record_dir),
      { maxAgeHours: config.record_retention_hours, maxMb: config.record_retention_max_mb },
      parseInt(config.record_file_mode, 8),
      log.child({ component: 'recordings' }),
      store,
      hook,
    );
  }

  constructor(
    readonly dir: string,
    private readonly retention: RecordingRetention,
    /** `record_file_mode`: a part an earlier run left unlisted gets it as it is put in `record_dir`. */
    private readonly fileMode: number,
    private readonly log: Logger,
    /** The bucket parts are uploaded to, when `record_s3` names one. */
    private readonly store?: RecordingStore,
    /** `record_hook`, run for each finished part: at once, or once it is uploaded (the uploads run it then). */
    private readonly hook?: RecordHook,
  ) {
    RecordingLibrary.#trackSizes(this);
  }

  /**
   * Puts in order what an earlier run stopped short left (`reclaimLeftovers`): before this run
   * records anything. Then applies retention now and every minute.
   */
  async start(): Promise<void> {
    await reclaimLeftovers(this.dir, this.fileMode, this.log).catch((error: Error) =>
      this.log.error({ reason: error.message }, 'record_dir could not be read for what an earlier run left'),
    );
    // Parts an earlier run finished, or was stopped in, and did not see into the bucket.
    if (this.store) {
      const parts = await this.#parts().catch(() => []);
      const unsent = parts.filter((p) => p.storage.state !== 'uploaded' && p.storage.state !== 'local');
      const wanted = parts.filter((p) => p.storage.state === 'local' && p.uploads);
      await this.store.uploads.resume(
        [...unsent, ...wanted].map((p) => ({
          file: p.fileName,
          stream: p.streamName,
          mediaSessionId: p.mediaSessionId,
        })),
      );
    }
    this.#sweeper = setInterval(() => void this.sweep(), SWEEP_MS);
    this.#sweeper.unref();
    void this.sweep();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.store?.uploads.close();
  }

  /** Follows this node's recordings. */
  follow(event: LifecycleEvent): void {
    if (event.type === 'recording.started') this.#writing.add(event.file);
    if (event.type !== 'recording.finished') return;
    this.#writing.delete(event.file);
    const name = PART_FILE.exec(event.file)?.[1];
    if (this.store && name)
      void this.#about(name).then((about) => {
        if (about && this.#uploads(about))
          void this.store!.uploads.add({
            file: event.file,
            stream: event.stream,
            mediaSessionId: event.mediaSessionId,
          });
        else this.hook?.follow(event);
      });
    else this.hook?.follow(event);
    void this.sweep();
  }

  /** Whether a recording's parts go to the bucket: as it asked (`record://?storage=`), else as configured. */
  #uploads(about: RecordingAbout): boolean {
    if (!this.store) return false;
    return about.storage === undefined ? this.store.bucket.settings.upload_by_default : about.storage === 's3';
  }

  async list(filter: { streamName?: string } = {}): Promise<Recording[]> {
    return (await this.#parts(filter)).map(({ uploads: _, ...recording }) => recording);
  }

  /** The parts, each with whether its recording uploads them. */
  async #parts(filter: { streamName?: string } = {}): Promise<(Recording & { uploads: boolean })[]> {
    const names = await readdir(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw error;
    });
    const byRecording = new Map<string, Set<string>>();
    for (const entry of names) {
      // A part, or a part uploaded and no longer on this node: listed by its upload file.
      const file = entry.startsWith('.') ? UPLOAD_FILE.exec(entry)?.[1] : entry;
      const name = file === undefined ? undefined : PART_FILE.exec(file)?.[1];
      if (name) byRecording.set(name, (byRecording.get(name) ?? new Set()).add(file!));
    }
    const found: (Recording & { uploads: boolean })[] = [];
    for (const [name, files] of byRecording) {
      const about = await this.#about(name);
      if (!about || (filter.streamName !== undefined && about.stream !== filter.streamName)) continue;
      const listed = await this.#listed(name);
      // ffmpeg lists times on the stream's clock, which need not start at 0 (a recording made
      // again after a loss goes on with the push's timeline): they count from the first part's.
      const starts = [...listed.values()].map((p) => p.start);
      const origin = starts.length ? Math.min(...starts) : 0;
      let next = origin; // where a part not in the list began: where the one before it ended
      // In the order of their numbers: a recording that never ends goes past -999.mp4 to -1000.mp4.
      const number = (file: string): number => Number(PART_FILE.exec(file)![2]);
      for (const file of [...files].sort((a, b) => number(a) - number(b))) {
        const local = await this.#fileSize(file);
        const upload = this.store ? await readUploadRecord(this.dir, file) : undefined;
        // Deleted meanwhile, or not a file of the gateway's (a link, a folder), and not in the bucket: not listed.
        const size = local ?? (upload?.state === 'uploaded' ? upload.size : undefined);
        if (size === undefined) continue;
        const captionsFile = (await this.#fileSize(captionsFileOf(file))) === undefined ? null : captionsFileOf(file);
        const part = listed.get(file);
        const startS = part?.start ?? next;
        next = part?.end ?? next;
        const state = this.#writing.has(file) ? 'recording' : part ? 'finished' : 'interrupted';
        found.push({
          fileName: file,
          streamName: about.stream,
          mediaSessionId: about.mediaSessionId,
          startedAt: new Date(Date.parse(about.startedAt) + (startS - origin) * 1000).toISOString(),
          durationMs: state === 'finished' && part ? Math.round((part.end - part.start) * 1000) : null,
          size,
          state,
          captionsFile,
          storage: this.#storage(upload, local !== undefined),
          uploads: this.#uploads(about),
        });
      }
    }
    return found.sort(
      (a, b) => a.startedAt.localeCompare(b.startedAt) || a.fileName.localeCompare(b.fileName, 'en', { numeric: true }),
    );
  }

  /** Where a part is kept, from its upload file (none: on this node only). */
  #storage(upload: UploadRecord | undefined, local: boolean): Recording['storage'] {
    if (!upload || !this.store) return { state: 'local', local };
    const bucket = upload.bucket ?? this.store.bucket.name;
    return {
      state: upload.state,
      bucket,
      key: upload.key,
      ...(upload.state === 'failed' && upload.error ? { error: upload.error } : {}),
      local,
    };
  }

  /** A regular file's size in `record_dir`; undefined when there is none (deleted meanwhile, a link, a folder). */
  #fileSize(file: string): Promise<number | undefined> {
    return lstat(join(this.dir, file)).then(
      (s) => (s.isFile() ? s.size : undefined),
      () => undefined,
    );
  }

  /**
   * A part or its captions to download, opened (never through a link, and only a regular file) with its size now (a
   * part being written grows). The caller closes the handle.
   */
  async file(fileName: string): Promise<{ handle: FileHandle; size: number }> {
    try {
      return await openOwnFile(join(this.dir, fileName));
    } catch {
      throw notFound(`no recording ${fileName}`);
    }
  }

  async remove(fileName: string): Promise<void> {
    const part = (await this.#parts()).find((p) => p.fileName === fileName);
    if (!part) throw notFound(`no recording ${fileName}`);
    if (this.#writing.has(fileName)) throw conflict(`${fileName} is being recorded: terminate its push first`);
    if (this.#unconfirmed(part))
      throw conflict(`${fileName} is on its way to the bucket: it can be deleted once uploaded`);
    await this.#delete(fileName, 'deleted on request', part.storage);
  }

  /** Deletes finished parts past the retention rules, oldest first, and what their recordings left beside them. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep()
      .catch((error: Error) => this.log.error({ reason: error.message }, 'recordings could not be swept'))
      .finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    const { maxAgeHours, maxMb } = this.retention;
    if (maxAgeHours === 0 && maxMb === 0) return;
    // Nothing the bucket has not confirmed is deleted: a part waiting to be uploaded stays.
    const parts = (await this.#parts()).filter((r) => r.state !== 'recording' && !this.#unconfirmed(r));
    const oldestFirst = parts.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    // The size limit is the disk's: it counts the files on this node, and takes an uploaded part's file only.
    let total = oldestFirst.reduce((sum, r) => sum + (r.storage.local ? r.size : 0), 0);
    const ageLimit = wallClockMs() - maxAgeHours * 3_600_000;
    for (const part of oldestFirst) {
      // Queued since the list was read (a part finished meanwhile): left for the bucket.
      if (this.store?.uploads.has(part.fileName)) continue;
      const tooOld = maxAgeHours > 0 && Date.parse(part.startedAt) + (part.durationMs ?? 0) < ageLimit;
      const tooMuch = maxMb > 0 && part.storage.local && total > maxMb * 1048576;
      if (tooOld) await this.#delete(part.fileName, `older than record_retention_hours (${maxAgeHours})`, part.storage);
      else if (tooMuch && part.storage.state === 'uploaded') await this.#deleteLocal(part.fileName);
      else if (tooMuch)
        await this.#delete(part.fileName, `recordings above record_retention_max_mb (${maxMb})`, part.storage);
      if ((tooOld || tooMuch) && part.storage.local) total -= part.size;
    }
  }

  /** An uploaded part's file (and captions) leave this node; the bucket keeps it, and it stays listed. */
  async #deleteLocal(fileName: string): Promise<void> {
    await Promise.all([fileName, captionsFileOf(fileName)].map((f) => rm(join(this.dir, f), { force: true })));
    this.log.info(
      { file: fileName, why: `recordings above record_retention_max_mb (${this.retention.maxMb})` },
      'recording file deleted, kept in the bucket',
    );
  }

  /**
   * Whether a part is on its way to the bucket and not yet confirmed there: queued, being uploaded,
   * failed, or finished in a recording that uploads and not yet queued (its upload file comes a
   * moment after the part). Nothing deletes such a part.
   */
  #unconfirmed(part: Recording & { uploads: boolean }): boolean {
    if (!this.store) return false;
    if (this.store.uploads.has(part.fileName)) return true;
    return part.storage.state === 'local' ? part.uploads : part.storage.state !== 'uploaded';
  }

  /** Deletes a part, on this node and, once uploaded, in the bucket: retention and requests apply to both. */
  async #delete(fileName: string, why: string, storage: Recording['storage']): Promise<void> {
    const name = PART_FILE.exec(fileName)![1]!;
    const { about, parts, writing } = recordingFiles(this.dir, name);
    // An object of another bucket (`record_s3.bucket` changed since) is left where it is.
    if (this.store && storage.state === 'uploaded' && storage.key && storage.bucket === this.store.bucket.name) {
      const { bucket } = this.store;
      // The object first: a part whose object could not be deleted stays listed, to be deleted again.
      await bucket.remove(storage.key);
      await bucket.remove(captionsFileOf(storage.key));
    }
    // A link to the part may be left in the recording's folder by a gateway that was killed.
    const paths = [
      join(this.dir, fileName),
      join(this.dir, captionsFileOf(fileName)),
      join(writing, fileName),
      uploadFileOf(this.dir, fileName),
    ];
    await Promise.all(paths.map((path) => rm(path, { force: true })));
    this.log.info({ file: fileName, why }, 'recording deleted');
    // The recording's own files go with its last part.
    const left = (await readdir(this.dir)).some(
      (f) => PART_FILE.exec(f)?.[1] === name || PART_FILE.exec(UPLOAD_FILE.exec(f)?.[1] ?? '')?.[1] === name,
    );
    if (left) return;
    await Promise.all([
      rm(about, { force: true }),
      rm(parts, { force: true }),
      rm(writing, { recursive: true, force: true }),
    ]);
  }

  /** ffmpeg's list of the recording's finished parts: beside them once it ended, in its own folder while it records. */
  async #listed(name: string): Promise<Map<string, { start: number; end: number }>> {
    const { parts, writing } = recordingFiles(this.dir, name);
    const done = await listedParts(parts);
    return done.size ? done : listedParts(join(writing, `.${name}.csv`));
  }

  async #about(name: string): Promise<RecordingAbout | undefined> {
    try {
      return JSON.parse(await readOwnFile(recordingFiles(this.dir, name).about)) as RecordingAbout;
    } catch {
      return undefined; // not a recording of the gateway's
    }
  }
}
