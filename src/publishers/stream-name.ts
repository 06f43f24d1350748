import { z } from 'zod';
import { invalid } from '../core/errors.js';

/** The longest stream name, on every path (REST, WHIP, SDK). */
const STREAM_NAME_MAX = 128;
/** Parts of letters, digits, `_`, `.`, `-`, at most three joined by `#` (Web Call Server's `user1#room1#desktop`). */
const CHARACTERS = /^[A-Za-z0-9_.-]+(#[A-Za-z0-9_.-]+){0,2}$/;
const RULE = `must be 1-${STREAM_NAME_MAX} letters, digits, "_", "." or "-" (up to three such parts joined by "#"), and not "." or ".."`;

/**
 * Stream names: what Web Call Server accepts in practice, kept safe for URLs and file names (a
 * recording's name turns `#` into `_`; URLs carry it encoded, `%23`). `.` and `..` are refused: a
 * WHIP resource URL holding them resolves to another path. A name with `#` is a caller of a room
 * when `mixer_auto_start` is on (`control/rooms.ts`).
 */
function isStreamName(name: string): boolean {
  return name.length >= 1 && name.length <= STREAM_NAME_MAX && CHARACTERS.test(name) && name !== '.' && name !== '..';
}

export function checkStreamName(name: string, field = 'streamName'): void {
  if (!isStreamName(name)) throw invalid(field, RULE);
}

export const streamNameSchema = z.string().refine(isStreamName, RULE);
