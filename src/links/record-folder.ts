import { close, constants, open } from 'node:fs';
import { chmod, link, mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const openFd = promisify(open);
const closeFd = promisify(close);
/** How often a part ffmpeg said it opens is looked for (ms). */
const PART_POLL_MS = 10;

/**
 * The folder of one recording's own, `.<name>.writing` (mode 0700), where its ffmpeg writes: made
 * anew (nothing may be at that name), then held open, so that ffmpeg and the gateway reach it by
 * its descriptor (`/proc/self/fd/N`) even if its name in `record_dir` were replaced by a link.
 * Each part is linked into `record_dir` by its name as ffmpeg opens it (a hard link: the same file,
 * readable there while it is written; refused, never replaced, when anything is at that name).
 */
export class WritingFolder {
  #closed = false;

  private constructor(
    readonly fd: number,
    private readonly dir: string,
    private readonly fileMode: number,
  ) {}

  /**
   * Makes the folder at `path` (`EEXIST` when anything is there already), for parts published into
   * `dir` (`record_dir`) with `fileMode`.
   */
  static async make(path: string, dir: string, fileMode: number): Promise<WritingFolder> {
    await mkdir(path, { mode: 0o700 });
    return new WritingFolder(
      await openFd(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW),
      dir,
      fileMode,
    );
  }

  /** A file in the folder, by the folder's descriptor. */
  path(file: string): string {
    return `/proc/self/fd/${this.fd}/${file}`;
  }

  /**
   * Links `file` into `record_dir` under the same name, with the recordings' mode; `waitMs`: how
   * long ffmpeg may take to make it after saying it opens it.
   */
  async publish(file: string, waitMs = 0): Promise<void> {
    for (let waited = 0; ; waited += PART_POLL_MS) {
      try {
        await chmod(this.path(file), this.fileMode);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || waited >= waitMs || this.#closed) throw error;
        await new Promise((resolve) => setTimeout(resolve, PART_POLL_MS));
      }
    }
    await link(this.path(file), join(this.dir, file));
  }

  /** Removes `file` from the folder (its link in `record_dir` stays). */
  async drop(file: string): Promise<void> {
    await unlink(this.path(file)).catch(() => {});
  }

  /** Once ffmpeg has ended: the folder is removed when empty, and its descriptor closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeFd(this.fd).catch(() => {});
  }
}
