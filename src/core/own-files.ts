import { closeSync, constants, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Files the gateway writes or serves are opened without following a symbolic link at their name,
 * and checked to be regular files: someone who can write into one of its folders (a shared
 * recordings volume, a sidecar) cannot make it write through a link planted at a predictable name,
 * or serve the file a link points to. Names are checked by their callers to hold no `/`.
 */
const NO_FOLLOW = constants.O_NOFOLLOW;

/** Thrown for a name that is a link or not a regular file: told as `ELOOP`, as the kernel tells a link. */
function notRegular(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${path} is not a regular file`), { code: 'ELOOP' });
}

/** Opens `path` for reading: a regular file, not a link. Answers the handle and the file's size. */
export async function openOwnFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  const handle = await open(path, constants.O_RDONLY | NO_FOLLOW | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw notRegular(path);
    return { handle, size: stats.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Reads a regular file that is not a link, as text. */
export async function readOwnFile(path: string): Promise<string> {
  const { handle } = await openOwnFile(path);
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** `readOwnFile`, for start-up code that runs before anything else. */
export function readOwnFileSync(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | NO_FOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw notRegular(path);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Creates `path` with exactly `mode` (whatever the umask), which must not exist (a link there counts as existing): `EEXIST` otherwise. */
export async function createOwnFile(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW, mode);
  try {
    await handle.chmod(mode);
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

/** `createOwnFile`, synchronously. */
export function createOwnFileSync(path: string, data: string, mode = 0o600): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW, mode);
  try {
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/** Opens `path` to append to it, creating it 0600 when absent; a link or a non-regular file there is refused. */
export async function appendOwnFile(path: string): Promise<FileHandle> {
  const handle = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NO_FOLLOW, 0o600);
  try {
    if (!(await handle.stat()).isFile()) throw notRegular(path);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}
