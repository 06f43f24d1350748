import { monotonicMs } from '../core/clock.js';
import { lstat, mkdir, rmdir, statfs, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createOwnFile, readOwnFile } from '../core/own-files.js';
import { RecordingCaptions } from './record-captions.js';
import { WritingFolder } from './record-folder.js';
import type { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { FFMPEG_QUIET, FfmpegLink, FLV_STDIN, type FfmpegLinkSettings } from './ffmpeg-link.js';
import { type FailureKind, OpenError } from './failures.js';
import type { LinkFactory } from './link.js';
import { recordingName } from './record-names.js';

/** How often a recording looks at the free space of its disk (ms). */
const DISK_CHECK_MS = 2000;

/** How the gateway records (`record_*` in the configuration). */
export interface RecordSettings {
  /** Absolute. */
  dir: string;
  /** `{stream}`, `{start}`, `{id}` and the other tokens of `recordingName`: each part follows it with `-001.mp4`… */
  filePattern: string;
  /** Parts of this long (s), cut at keyframes. */
  partS: number;
  /** Below this free space (MB) no recording starts, and those running end. */
  minFreeMb: number;
  /** Permissions of the files (`record_file_mode`) and of `dir` when made (`record_dir_mode`). */
  fileMode: number;
  dirMode: number;
}

export interface RecordLinkSettings extends FfmpegLinkSettings {
  /** Starts ffmpeg through the gateway's supervisor, with `fd3` as its descriptor 3. */
  spawn: (args: readonly string[], fd3?: number) => FfmpegProcess;
  record: RecordSettings;
}

/** One file of a recording, as events and listings tell it. */
export interface RecordingPart {
  /** The file's name in `record_dir`. */
  file: string;
  stream: string;
  mediaSessionId: string;
  /** When the part began (ISO 8601). */
  startedAt: string;
  /** Its length (finished parts): from ffmpeg's list of parts, else from the clock when ffmpeg was stopped short. */
  durationMs?: number;
  /** Finished parts whose video carried captions: the WebVTT file beside it with the same cues. */
  captionsFile?: string;
  /** Why that file could not be written. */
  captionsError?: string;
}

/** What a finished part tells of its WebVTT. */
type PartCaptions = Pick<RecordingPart, 'captionsFile' | 'captionsError'>;

export type RecordingEvent = { type: 'started' | 'finished'; part: RecordingPart };

/**
 * What a recording writes beside its parts: who it is of (`.<name>.json`), ffmpeg's list of
 * finished parts (`.<name>.csv`), and the folder of its own that ffmpeg writes in (`.<name>.writing`).
 */
export const recordingFiles = (dir: string, name: string): { about: string; parts: string; writing: string } => ({
  about: join(dir, `.${name}.json`),
  parts: join(dir, `.${name}.csv`),
  writing: join(dir, `.${name}.writing`),
});

/** ffmpeg's own name for the folder on its descriptor 3. */
const FFMPEG_FOLDER = '/proc/self/fd/3';

/** The part files of a recording: `<name>-001.mp4`… */
export const PART_FILE = /^(.+)-(\d{3,})\.mp4$/;

/** What `.<name>.json` holds. */
export interface RecordingAbout {
  stream: string;
  mediaSessionId: string;
  startedAt: string;
  /** Where its parts are kept, as the push asked (`record://?storage=`); none: as configured. */
  storage?: RecordStorage;
}

/** A recording's parts kept on this node only, or uploaded to the bucket (`record_s3`). */
export type RecordStorage = 'local' | 's3';

/**
 * ffmpeg's arguments for a recording: FLV from standard input, copied (H.264 and AAC as they are)
 * into parts of `partS` seconds cut at keyframes, each a fragmented MP4 (a fragment per keyframe,
 * the index up front) so that a part stays playable up to its last fragment however ffmpeg ends.
 * ffmpeg lists each finished part with its start and end in `.<name>.csv`. It writes everything in
 * the folder given as its descriptor 3 (`dir`, `/proc/self/fd/3`), a folder of the recording's own
 * that nobody else can write in: no name it opens can be a link someone planted.
 */
export function recordArgs(dir: string, name: string, partS: number): string[] {
  return [
    ...FFMPEG_QUIET,
    ...FLV_STDIN,
    '-f',
    'segment',
    '-segment_time',
    String(partS),
    '-segment_start_number',
    '1',
    '-reset_timestamps',
    '1',
    '-segment_format',
    'mp4',
    // Each fragment is written out when made, not held in a buffer a kill would lose.
    '-segment_format_options',
    'movflags=+frag_keyframe+empty_moov+default_base_moof:flush_packets=1',
    '-segment_list',
    join(dir, `.${name}.csv`),
    '-segment_list_type',
    'csv',
    join(dir, `${name}-%03d.mp4`),
  ];
}

/** Free space of the disk that holds `dir`, in MB (for an unprivileged user). */
async function freeMb(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return (stats.bavail * stats.bsize) / 1048576;
}

const diskFull = (free: number, settings: RecordSettings): string =>
  `the disk of record_dir has ${Math.floor(free)} MB free, less than record_min_free_mb (${settings.minFreeMb})`;

/** Why a recording's ffmpeg ended, from its last lines. */
export function recordFailure(lines: readonly string[]): { reason: string; kind: FailureKind } {
  const text = lines.join('\n');
  if (/No space left on device|ENOSPC|Disk quota exceeded/i.test(text))
    return { reason: 'the disk of record_dir is full', kind: 'storage' };
  if (/Permission denied|Read-only file system/i.test(text))
    return { reason: 'record_dir cannot be written (permission denied or read-only)', kind: 'rejected' };
  const last = [...lines].reverse().find((l) => /error|fail|invalid/i.test(l)) ?? lines.at(-1) ?? 'ffmpeg ended';
  return { reason: `recording ended: ${last.trim()}`, kind: 'local' };
}

/**
 * Recordings of one push: each link is a recording of its own (a new name, parts from `-001`),
 * started when the push starts and again when it is restored after a loss. A publisher away does
 * not end one: the still picture is recorded, as it is pushed. A disk with less than
 * `record_min_free_mb` free refuses a recording, or ends the one running (its parts closed as
 * ffmpeg stops, not cut).
 */
export function recordLinks(
  settings: RecordLinkSettings,
  push: { stream: string; mediaSessionId: string; storage?: RecordStorage },
  onRecording: (event: RecordingEvent) => void,
): LinkFactory {
  const { record } = settings;
  return async () => {
    try {
      await mkdir(record.dir, { recursive: true, mode: record.dirMode });
    } catch (error) {
      throw new OpenError(
        `record_dir cannot be made: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        'rejected',
      );
    }
    const free = await freeMb(record.dir);
    if (free < record.minFreeMb) throw new OpenError(diskFull(free, record), 'storage');
    const start = new Date();
    const about: RecordingAbout = { ...push, startedAt: start.toISOString() };
    const { name, folder } = await claimName(
      record,
      recordingName(record.filePattern, push.stream, push.mediaSessionId, start),
      about,
    );
    const captions = new RecordingCaptions();
    const parts = new PartFollower(record, name, folder, push, onRecording, captions);
    let watch: NodeJS.Timeout | undefined;
    let ffmpeg: FfmpegProcess;
    try {
      ffmpeg = settings.spawn(recordArgs(FFMPEG_FOLDER, name, record.partS), folder.fd);
    } catch (error) {
      // Nothing was written: the recording's name is given back (its folder and its `.json`).
      await folder.close();
      const files = recordingFiles(record.dir, name);
      await rmdir(files.writing).catch(() => {});
      await unlink(files.about).catch(() => {});
      throw error;
    }
    const link = new FfmpegLink(
      ffmpeg,
      {
        failure: recordFailure,
        opened: parts.first,
        caption: (cue) => captions.add(cue),
        onLine: (line) => parts.line(line, (reason) => link.fail(reason, 'rejected')),
        onEnded: () => {
          clearInterval(watch);
          void parts.ended();
        },
      },
      settings,
    );
    watch = setInterval(() => {
      void freeMb(record.dir).then(
        (free) => free < record.minFreeMb && link.fail(diskFull(free, record), 'storage'),
        () => {},
      );
    }, DISK_CHECK_MS);
    watch.unref();
    return link;
  };
}

/**
 * Takes `name` for a new recording by creating its `.<name>.json` and its folder, or `<name>-2`,
 * `-3`… when anything is at either name already (a recording of the same pattern within one
 * second, or a link someone planted): a recording never writes over another, nor through a link.
 */
async function claimName(
  record: RecordSettings,
  name: string,
  about: RecordingAbout,
): Promise<{ name: string; folder: WritingFolder }> {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? name : `${name}-${n}`;
    const { about: aboutFile, parts } = recordingFiles(record.dir, candidate);
    try {
      // Its list of parts is moved in beside them at the end: that name must be free too.
      if (
        await lstat(parts).then(
          () => true,
          () => false,
        )
      )
        throw Object.assign(new Error('taken'), { code: 'EEXIST' });
      await createOwnFile(aboutFile, JSON.stringify(about), record.fileMode);
      try {
        return {
          name: candidate,
          folder: await WritingFolder.make(recordingFiles(record.dir, candidate).writing, record.dir, record.fileMode),
        };
      } catch (error) {
        await unlink(aboutFile).catch(() => {});
        throw error;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 100)
        throw new OpenError(
          `the recording cannot be named: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
          'local',
        );
    }
  }
}

/** How long a part ffmpeg said it opens has to appear (ms). */
const PART_APPEAR_MS = 5000;

/** Follows the parts ffmpeg opens (its log) and finishes (its list), and tells of each. */
class PartFollower {
  #open: RecordingPart | undefined;
  /** When the open part was opened, on the monotonic clock (its duration when ffmpeg's list does not tell it). */
  #openedMs = 0;
  #finishing: Promise<void> = Promise.resolve();
  /** Whether the part open was put in `record_dir`. */
  #published: Promise<boolean> = Promise.resolve(false);
  #isFirst = true;
  /** Where the open part begins, in ms after the recording's first frame. */
  #partStartMs = 0;
  #firstIn!: () => void;
  /** Resolves once the first part is in `record_dir`: the recording is open. */
  readonly first = new Promise<void>((resolve) => (this.#firstIn = resolve));

  constructor(
    private readonly record: RecordSettings,
    private readonly name: string,
    private readonly folder: WritingFolder,
    private readonly push: { stream: string; mediaSessionId: string },
    private readonly tell: (event: RecordingEvent) => void,
    private readonly captions: RecordingCaptions,
  ) {}

  /** A line of ffmpeg's log; `refuse` ends the recording when a part cannot be put in `record_dir`. */
  line(line: string, refuse: (reason: string) => void): void {
    const opened = /Opening '(.+\.mp4)' for writing/.exec(line);
    if (!opened) return;
    this.#finish();
    const file = basename(opened[1]!);
    this.#open = { file, ...this.push, startedAt: new Date().toISOString() };
    this.#openedMs = monotonicMs();
    const part = this.#open;
    const isFirst = this.#isFirst;
    this.#isFirst = false;
    this.#published = this.folder.publish(file, PART_APPEAR_MS).then(
      () => {
        this.tell({ type: 'started', part });
        if (isFirst) this.#firstIn();
        return true;
      },
      (error: NodeJS.ErrnoException) => {
        refuse(
          error.code === 'EEXIST'
            ? `record_dir already holds ${file}, which this recording did not write`
            : `${file} cannot be put in record_dir: ${error.code ?? 'error'}`,
        );
        return false;
      },
    );
  }

  /** ffmpeg ended: the part open is finished (listed if ffmpeg stopped cleanly), the list moved beside the parts. */
  async ended(): Promise<void> {
    this.#finish(true);
    await this.#finishing;
    const list = `.${this.name}.csv`;
    await this.folder.publish(list).catch(() => {}); // none when ffmpeg wrote no part
    await this.folder.drop(list);
    await this.folder.close();
    await rmdir(recordingFiles(this.record.dir, this.name).writing).catch(() => {});
  }

  /** The open part is finished; `last`: ffmpeg ended, the part holds every caption left. */
  #finish(last = false): void {
    const part = this.#open;
    if (!part) return;
    this.#open = undefined;
    const openForMs = monotonicMs() - this.#openedMs;
    const published = this.#published;
    this.#finishing = this.#finishing.then(async () => {
      // A part refused (its name taken in record_dir) goes from the folder, so that the folder goes too.
      if (!(await published)) return this.folder.drop(part.file);
      await this.folder.drop(part.file);
      const listed = (await listedParts(this.folder.path(`.${this.name}.csv`))).get(part.file);
      const durationMs = listed ? Math.round((listed.end - listed.start) * 1000) : Math.round(openForMs);
      const startMs = this.#partStartMs;
      this.#partStartMs += durationMs;
      const captions = await this.#writeCaptions(part.file, startMs, last ? undefined : startMs + durationMs);
      this.tell({ type: 'finished', part: { ...part, durationMs, ...captions } });
    });
  }

  /** The part's cues as WebVTT beside it (`-001.vtt`), when its video carried any; never over a file there. */
  async #writeCaptions(file: string, startMs: number, endMs: number | undefined): Promise<PartCaptions> {
    const vtt = this.captions.part(startMs, endMs);
    if (vtt === undefined) return {};
    const captionsFile = file.replace(/\.mp4$/, '.vtt');
    try {
      await createOwnFile(join(this.record.dir, captionsFile), vtt, this.record.fileMode);
      const { dropped } = this.captions;
      return {
        captionsFile,
        ...(dropped
          ? { captionsError: `${dropped} captions of the recording so far were left out: too many in one part` }
          : {}),
      };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      const taken = `record_dir already holds ${captionsFile}, which this recording did not write`;
      return { captionsError: code === 'EEXIST' ? taken : `${captionsFile} cannot be written: ${code}` };
    }
  }
}

/** ffmpeg's list of a recording's finished parts: file → start and end (s from the recording's start); empty when there is none. */
export async function listedParts(csv: string): Promise<Map<string, { start: number; end: number }>> {
  const text = await readOwnFile(csv).catch(() => '');
  const parts = new Map<string, { start: number; end: number }>();
  for (const line of text.split('\n')) {
    const [file, start, end] = line.split(',').map((field) => field.trim());
    if (file && Number.isFinite(Number(start)) && Number.isFinite(Number(end)) && start && end)
      parts.set(file, { start: Number(start), end: Number(end) });
  }
  return parts;
}
