import { z } from 'zod';
import { invalid } from '../errors.js';

/** The longest stream name, on every path (REST, WHIP, SDK). */
const STREAM_NAME_MAX = 128;
const CHARACTERS = /^[A-Za-z0-9_.-]+$/;
const RULE = `must be 1-${STREAM_NAME_MAX} letters, digits, "_", "." or "-", and not "." or ".."`;

/**
 * Stream names: what Web Call Server accepts in practice, kept safe for URLs and file names. `.` and
 * `..` are refused: a WHIP resource URL holding them resolves to another path.
 */
function isStreamName(name: string): boolean {
  return name.length >= 1 && name.length <= STREAM_NAME_MAX && CHARACTERS.test(name) && name !== '.' && name !== '..';
}

export function checkStreamName(name: string, field = 'streamName'): void {
  if (!isStreamName(name)) throw invalid(field, RULE);
}

export const streamNameSchema = z.string().refine(isStreamName, RULE);
