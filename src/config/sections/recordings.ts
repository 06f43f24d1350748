import { z } from 'zod';
import { seconds, hours, megabytes, octalMode } from '../fields.js';

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
      /^(?=.*\{(stream|id)\})(?:[\w.-]|\{(?:stream|start|id)\})+$/,
      'must name the stream ({stream}) or the push ({id}), and hold only letters, digits, "_", ".", "-" and {stream}, {start}, {id}',
    )
    .max(128)
    .default('{stream}-{start}')
    .describe(
      "a recording's name: `{stream}`, `{start}` (UTC, `20261124T102233Z`), `{id}` (the push's first 8 " +
        'characters); each part adds `-001.mp4`, `-002.mp4`…',
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
};
