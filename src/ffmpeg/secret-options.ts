import { close, open, write } from 'node:fs';
import { mkdtemp, rmdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const openFd = promisify(open);
const writeFd = promisify(write);
const closeFd = promisify(close);

/** Where ffmpeg finds the options of `secretOptionsFile`: its descriptor 3, read as a preset file. */
export const SECRET_OPTIONS_ARGS = ['-fpre', '/proc/self/fd/3'] as const;

/**
 * Options for ffmpeg that must not be in its arguments, which any local user reads in
 * `/proc/<pid>/cmdline` (an SRT passphrase, a stream id). They go in a preset file (`key=value`
 * lines, which `-fpre` applies to the next output as if given on the command line) that only this
 * process can read: made 0600 in a fresh 0700 folder and unlinked at once, so nothing of it is left
 * on disk whatever happens next. Answers the open descriptor, for ffmpeg's descriptor 3 (`Fd3`):
 * close it with `closeSecretOptions` once ffmpeg has started. Values hold no line break
 * (destinations refuse control characters).
 */
export async function secretOptionsFile(options: Readonly<Record<string, string>>): Promise<number> {
  const text = Object.entries(options)
    .map(([key, value]) => {
      if (/[\r\n]/.test(value) || value === '') throw new Error(`ffmpeg option ${key} cannot go in a preset file`);
      return `${key}=${value}\n`;
    })
    .join('');
  const folder = await mkdtemp(join(tmpdir(), 'gateway-options-'));
  const path = join(folder, 'options');
  let fd: number | undefined;
  try {
    fd = await openFd(path, 'wx+', 0o600);
    await writeFd(fd, text, 0, 'utf8');
    return fd;
  } catch (error) {
    if (fd !== undefined) await closeFd(fd).catch(() => {});
    throw error;
  } finally {
    await unlink(path).catch(() => {});
    await rmdir(folder).catch(() => {});
  }
}

/** Closes what `secretOptionsFile` answered, once ffmpeg holds its own copy (or will not start). */
export function closeSecretOptions(fd: number | undefined): void {
  if (fd !== undefined) close(fd, () => {});
}
