import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { GatewayError, invalid } from '../core/errors.js';
import { openOwnFile } from '../core/own-files.js';

/** A kind of file a request may name: what it is called, and how its first bytes tell it. */
export interface MediaFormat {
  what: string;
  matches(header: Buffer): boolean;
}

export const WAV: MediaFormat = {
  what: 'a RIFF WAV file',
  matches: (header) => header.toString('latin1', 0, 4) === 'RIFF' && header.toString('latin1', 8, 12) === 'WAVE',
};

export const IMAGE: MediaFormat = {
  what: 'a PNG or JPEG image',
  matches: (header) =>
    header.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) ||
    (header[0] === 0xff && header[1] === 0xd8 && header[2] === 0xff),
};

/**
 * The path of a file named in a request: a plain file name of a regular file of `format` inside
 * the media directory. Anything else is refused before anything starts, naming the field: 404
 * "No such file" when it does not exist, 400 for a path, `..`, a symlink leading out of the
 * directory, or a file of another kind.
 */
export async function resolveMediaFile(
  mediaDir: string,
  name: string,
  field: string,
  format: MediaFormat,
): Promise<string> {
  // eslint-disable-next-line no-control-regex
  if (name === '.' || name === '..' || /[/\\\x00-\x1f]/.test(name))
    throw invalid(field, 'must be a plain file name inside the media directory');
  let path: string;
  let dir: string;
  try {
    dir = await realpath(mediaDir);
    path = await realpath(join(dir, name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new GatewayError('not_found', 'No such file', field);
    throw invalid(field, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!path.startsWith(dir + sep)) throw invalid(field, 'leads outside the media directory');
  const header = Buffer.alloc(12);
  // The resolved path, opened without following a link swapped in since.
  const file = await openOwnFile(path).catch(() => {
    throw invalid(field, 'is not a regular file');
  });
  try {
    await file.handle.read(header, 0, 12, 0);
  } finally {
    await file.handle.close();
  }
  if (!format.matches(header)) throw invalid(field, `is not ${format.what}`);
  return path;
}

/**
 * The image files a request names (`field` names each in an error: missing, not an image, a path),
 * found in the media directory, each with its path. Nothing starts before they all are.
 */
export async function resolveImageFiles<T extends { file: string; field: string }>(
  mediaDir: string,
  wanted: readonly T[],
): Promise<(T & { path: string })[]> {
  const found: (T & { path: string })[] = [];
  for (const image of wanted)
    found.push({ ...image, path: await resolveMediaFile(mediaDir, image.file, image.field, IMAGE) });
  return found;
}
