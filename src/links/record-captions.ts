import type { LinkCue } from '../media/sinks.js';

/** How long a caption stays on screen with nothing after it: the pushed video's 608 erases it then too. */
const SHOWN_MS = 10_000;
/** Cues a recording holds for the part being written (10 hours at one a second): later ones are counted, not kept. */
const MAX_CUES = 36_000;

/** One caption as a player shows it, in ms after the recording's first frame. */
interface Cue {
  startMs: number;
  /** Undefined while nothing came after it. */
  endMs: number | undefined;
  text: string;
  final: boolean;
}

/**
 * A recording's captions, the same cues its video carries as CEA-608, for a WebVTT file beside
 * each part (`<name>-001.vtt`): a player that takes a side file (a `<track>`, VLC, an editor) shows
 * them without decoding 608. A caption shows until the next one begins, at most 10 s; interim text
 * and the text written over it make one cue, from when the first of them began, with the last text.
 */
export class RecordingCaptions {
  #cues: Cue[] = [];
  /** Cues not kept: the part being written held `MAX_CUES` already. */
  dropped = 0;

  add({ linkMs, text, final }: LinkCue): void {
    const last = this.#cues.at(-1);
    if (last && !last.final) {
      last.text = text;
      last.final = final;
      return;
    }
    if (last) last.endMs = Math.min(last.startMs + SHOWN_MS, linkMs);
    if (this.#cues.length >= MAX_CUES) {
      this.dropped++;
      return;
    }
    this.#cues.push({ startMs: linkMs, endMs: undefined, text, final });
  }

  /**
   * WebVTT for the part from `startMs` to `endMs` (undefined: the last part, with every cue left),
   * times counted from the part's start; undefined when no cue falls in it. Cues that end within
   * the part are then let go.
   */
  part(startMs: number, endMs: number | undefined): string | undefined {
    const inPart = (cue: Cue): boolean =>
      (cue.endMs ?? cue.startMs + SHOWN_MS) > startMs && (endMs === undefined || cue.startMs < endMs);
    const cues = this.#cues.filter(inPart);
    this.#cues = endMs === undefined ? [] : this.#cues.filter((cue) => cue.endMs === undefined || cue.endMs > endMs);
    if (cues.length === 0) return undefined;
    const blocks = cues.map((cue) => {
      const from = Math.max(0, cue.startMs - startMs);
      let to = (cue.endMs ?? cue.startMs + SHOWN_MS) - startMs;
      if (endMs !== undefined) to = Math.min(to, endMs - startMs);
      return `${vttTime(from)} --> ${vttTime(Math.max(to, from + 1))}\n${escapeCueText(cue.text)}`;
    });
    return `WEBVTT\n\n${blocks.join('\n\n')}\n`;
  }
}

/** `hh:mm:ss.ttt`, hours as many digits as they take. */
export function vttTime(ms: number): string {
  const whole = Math.max(0, Math.round(ms));
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  const hours = Math.floor(whole / 3_600_000);
  return `${pad(hours)}:${pad(Math.floor(whole / 60_000) % 60)}:${pad(Math.floor(whole / 1000) % 60)}.${pad(whole % 1000, 3)}`;
}

/** A cue's text: WebVTT reads `&`, `<` and `>` as markup (and `-->` as a timing), so they go as character references. */
const escapeCueText = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
