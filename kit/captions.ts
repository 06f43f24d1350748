import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A caption as ffmpeg's own CEA-608 decoder shows it: when it appears (s) and its rows' text. */
export interface DecodedCaption {
  startS: number;
  text: string;
}

/**
 * The CEA-608 captions (CC1) an H.264 file carries in its SEI, read by ffmpeg (`movie=…[out0+subcc]`
 * hands the decoder the A/53 data of each frame), as SRT: each cue's text with its markup removed
 * and its rows joined by a space. A roll-up row shows once the next carriage return comes.
 */
export async function readCaptions(file: string): Promise<DecodedCaption[]> {
  // The path goes into a filter graph: one with its special characters is not taken.
  if (/[\\':,;[\]=]/.test(file)) throw new Error(`readCaptions: a path without \\ ' : , ; [ ] = expected, not ${file}`);
  const { stdout } = await run(
    'ffmpeg',
    [
      '-nostdin',
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `movie=${file}[out0+subcc]`,
      '-map',
      '0:s',
      '-f',
      'srt',
      'pipe:1',
    ],
    {
      maxBuffer: 16 << 20,
    },
  );
  return stdout
    .split(/\r?\n\r?\n/)
    .map((cue) => cue.split(/\r?\n/))
    .filter((lines) => lines.length >= 3)
    .map(([, times, ...rows]) => {
      const [h, m, s, ms] = /^(\d+):(\d+):(\d+),(\d+)/.exec(times!)!.slice(1).map(Number);
      const text = rows
        .join(' ')
        .replace(/<[^>]*>|\{\\[^}]*\}/g, '')
        .replace(/\s+/g, ' ')
        .trim();
      return { startS: h! * 3600 + m! * 60 + s! + ms! / 1000, text };
    });
}
