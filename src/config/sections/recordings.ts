import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { seconds, hours, megabytes, octalMode } from '../fields.js';

/**
 * The tokens of `record_file_pattern`, what `recordingName` (`links/record-link.ts`) puts in their
 * place: Web Call Server's `stream_record_policy_template` names (`{streamName}`, `{startTime}`,
 * `{startTimeMillis}`, `{mediaSessionId}`) beside the gateway's own.
 */
export const RECORD_NAME_TOKENS = [
  'stream',
  'streamName',
  'start',
  'startTime',
  'startTimeMillis',
  'date',
  'time',
  'id',
  'mediaSessionId',
] as const;
const anyOf = (tokens: readonly string[]): string => `\\{(?:${tokens.join('|')})\\}`;
/** A stream's or a push's token somewhere, and nothing but safe characters and tokens. */
const RECORD_PATTERN = new RegExp(
  `^(?=.*${anyOf(['stream', 'streamName', 'id', 'mediaSessionId'])})(?:[\\w.-]|${anyOf(RECORD_NAME_TOKENS)})+$`,
);

/**
 * `record://` pushes: where their MP4 files go and how they are named and split
 * (`links/record-link.ts`, `links/record-folder.ts`), and how long they are kept (`recordings/library.ts`).
 */
export const recordingFields = {
  record_dir: z
    .string()
    .min(1)
    .default('recordings')
    .describe("where `record://` pushes write their MP4 files (relative to the gateway's folder)"),
  record_file_pattern: z
    .string()
    .regex(
      RECORD_PATTERN,
      'must name the stream ({stream}, {streamName}) or the push ({id}, {mediaSessionId}), and hold only ' +
        `letters, digits, "_", ".", "-" and the tokens ${RECORD_NAME_TOKENS.map((t) => `{${t}}`).join(', ')}`,
    )
    .max(128)
    .default('{stream}-{start}')
    .describe(
      "a recording's name: `{stream}` (or `{streamName}`), `{start}` (UTC, `20261124T102233Z`), " +
        '`{startTime}` or `{startTimeMillis}` (ms since 1970), `{date}` (UTC, `2026-11-24`), `{time}` (UTC, `10-22-33`), `{id}` (the ' +
        "push's first 8 characters), `{mediaSessionId}`; each part adds its index, `-001.mp4`, `-002.mp4`…",
    ),
  record_part_s: seconds(10, 86_400, 1800, 'a recording is split into parts of this long (s), each cut at a keyframe'),
  record_retention_hours: hours(0, 87_600, 0, 'finished recordings older than this are deleted (0: kept)'),
  record_retention_max_mb: megabytes(
    0,
    null,
    0,
    'while finished recordings take more than this (MB), the oldest are deleted (0: no limit)',
  ),
  record_file_mode: octalMode
    .default('0640')
    .describe("permissions of recording files (octal): the gateway's user reads and writes, its group reads"),
  record_dir_mode: octalMode.default('0750').describe('permissions of `record_dir` when the gateway makes it (octal)'),
  record_min_free_mb: megabytes(
    0,
    null,
    512,
    'a recording ends (`failed`, saying why) when the disk of `record_dir` has less than this free (MB); none starts then',
  ),
  record_hook: z
    .string()
    .default('')
    .refine(isExecutable, 'must be the absolute path of an executable file (or empty: none)')
    .describe(
      "a command run for each finished part (as Web Call Server's `on_record_hook_script`): an absolute path, " +
        "given the part's path, the stream and the push (docs/recording.md); empty: none",
    ),
  record_hook_timeout_s: seconds(1, 86_400, 30, 'a `record_hook` still running after this long (s) is killed'),
};

/** An absolute path to a regular file this process may execute; empty is no command at all. */
function isExecutable(path: string): boolean {
  if (path === '') return true;
  if (!isAbsolute(path)) return false;
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
