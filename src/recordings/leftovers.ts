import { close, constants, fstat, open } from 'node:fs';
import { chmod, link, lstat, readdir, readlink, realpath, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { PART_FILE } from '../links/record-link.js';

const openFd = promisify(open);
const closeFd = promisify(close);
const fstatFd = promisify(fstat);

/** The name of a recording's own folder: `.<name>.writing`. */
const WRITING_FOLDER = /^\.(.+)\.writing$/;

/** What was done with one leftover folder. */
export interface Reclaimed {
  recording: string;
  /** Parts put in `record_dir` (they list as interrupted, or finished when ffmpeg's list has them). */
  parts: string[];
  /** Files of the folder deleted: a part whose name another file had taken in `record_dir`. */
  deleted: string[];
  /** Whether ffmpeg's list of parts was moved beside them. */
  list: boolean;
  /** Left in the folder (not a file a recording writes): the folder stays. */
  kept: string[];
}

/** Every path some process of this machine holds open, as `/proc/<pid>/fd` tells them (those it may read). */
async function heldOpen(): Promise<Set<string>> {
  const held = new Set<string>();
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((entry) => /^\d+$/.test(entry));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
      if (target) held.add(target);
    }
  }
  return held;
}

/**
 * What a gateway stopped short (killed, or its machine lost) left in `record_dir`: a recording's own
 * folder, `.<name>.writing`, holding the part it was writing (already linked into `record_dir`, or
 * not yet), and ffmpeg's list of parts. Each such folder is emptied into `record_dir` as a recording
 * that ended would have left it, then removed: a part not yet there is linked in (or deleted, when
 * another file has its name), the list moved beside the parts. A folder some process holds open
 * (ffmpeg of this gateway's, or of another gateway sharing `record_dir`) is being written, and left;
 * so is one that is not this user's. The folder is reached by a descriptor, never through a link.
 */
export async function reclaimLeftovers(recordDir: string, fileMode: number, log: Logger): Promise<Reclaimed[]> {
  const dir = await realpath(recordDir).catch(() => recordDir); // as /proc tells the paths held open
  // Listed before the processes are read: a folder made since is not looked at.
  const folders = (await readdir(dir).catch(() => [] as string[])).filter((entry) => WRITING_FOLDER.test(entry));
  if (!folders.length) return [];
  const held = await heldOpen();
  const reclaimed: Reclaimed[] = [];
  for (const folder of folders) {
    const path = join(dir, folder);
    if (held.has(path)) continue;
    let fd: number;
    try {
      fd = await openFd(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch {
      continue; // a link, or gone meanwhile
    }
    try {
      const stats = await fstatFd(fd);
      if (process.getuid && stats.uid !== process.getuid()) continue;
      const done = await emptyInto(dir, `/proc/self/fd/${fd}`, WRITING_FOLDER.exec(folder)![1]!, fileMode);
      if (!done.kept.length) await rmdir(path).catch(() => done.kept.push('(the folder)'));
      log.warn(done, 'a recording stopped short by an earlier run was put in order');
      reclaimed.push(done);
    } catch (error) {
      log.error(
        { folder, reason: (error as Error).message },
        'a recording stopped short by an earlier run could not be put in order',
      );
    } finally {
      await closeFd(fd).catch(() => {});
    }
  }
  return reclaimed;
}

/** Empties the folder at `from` (recording `name`'s) into `dir`. */
async function emptyInto(dir: string, from: string, name: string, fileMode: number): Promise<Reclaimed> {
  const done: Reclaimed = { recording: name, parts: [], deleted: [], list: false, kept: [] };
  for (const file of await readdir(from)) {
    const source = join(from, file);
    const info = await lstat(source);
    const part = PART_FILE.exec(file)?.[1] === name;
    if (!info.isFile() || (!part && file !== `.${name}.csv`)) {
      done.kept.push(file);
      continue;
    }
    const target = join(dir, file);
    const there = await lstat(target).catch(() => undefined);
    if (there && there.ino === info.ino && there.dev === info.dev) {
      await unlink(source); // linked in already: its second name goes
      continue;
    }
    if (!there) {
      if (part) await chmod(source, fileMode);
      await link(source, target);
      await unlink(source);
      if (part) done.parts.push(file);
      else done.list = true;
      continue;
    }
    // Another file has the name in record_dir: a part refused for it, or a list of another recording's.
    await unlink(source);
    done.deleted.push(file);
  }
  return done;
}
