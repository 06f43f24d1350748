/**
 * CEA-608 closed captions, written for caption channel 1 (CC1, field 1) in roll-up mode (the
 * captions a live broadcast carries, each line appearing at the bottom and pushing the one before
 * it up) or pop-on mode (each caption loaded off screen, then shown whole at once, as prepared
 * captions are). A caption's text becomes byte pairs, each byte with odd parity in its top bit; a decoder
 * reads at most one pair per field per frame, so the pairs wait in a queue that each frame sent
 * takes a pair or two from (`take`).
 *
 * Control codes, special and extended characters are sent twice in a row, as the standard asks
 * (a decoder ignores the repeat, and takes the second when the first was damaged). Text is wrapped
 * into rows of 32 columns; a character outside 608's sets is sent as the nearest one it has
 * (accents stripped) or as `?`, and counted (`replaced`), never dropped.
 */

/** A byte pair as a 16-bit number, the first byte high, parity bits set. */
export type CcPair = number;

const COLUMNS = 32;
/**
 * Pairs a push may hold waiting: 20 s at 30 fps. A push that sends no frames (standby) while
 * captions keep coming drops what waits before the next caption: captions that late help nobody.
 */
const MAX_PENDING = 600;
/** Pairs taken before the array drops them, when it is never emptied. */
const COMPACT_AFTER = 1024;
/** CC1's miscellaneous control codes (first byte 0x14). */
const MISC = 0x14;
const ROLL_UP = { 2: 0x25, 3: 0x26, 4: 0x27 } as const;
const ERASE_DISPLAYED_MEMORY = 0x2c;
const RESUME_CAPTION_LOADING = 0x20;
const ERASE_NON_DISPLAYED_MEMORY = 0x2e;
const END_OF_CAPTION = 0x2f;
/** Preamble address codes at column 0, white, of the bottom four rows (12 to 15), as pop-on places a caption. */
const PAC_BOTTOM_ROWS = [
  [0x13, 0x40],
  [0x13, 0x60],
  [0x14, 0x40],
  [0x14, 0x60],
] as const;
const CARRIAGE_RETURN = 0x2d;
const DELETE_TO_END_OF_ROW = 0x24;
/** Preamble address code: row 15, column 0, white (0x14 0x60). */
const PAC_ROW_15 = [0x14, 0x60] as const;
/** The null pair: what a frame carries when there is nothing to say. */
export const PAD_PAIR: CcPair = withParity(0) * 256 + withParity(0);

/** The basic set: ASCII from 0x20, but for the codes 608 gives to other characters. */
const BASIC_OVERRIDES: Record<number, string> = {
  0x2a: 'á',
  0x5c: 'é',
  0x5e: 'í',
  0x5f: 'ó',
  0x60: 'ú',
  0x7b: 'ç',
  0x7c: '÷',
  0x7d: 'Ñ',
  0x7e: 'ñ',
  0x7f: '█',
};
/** Special characters (0x11 0x30-0x3F); 0x39 is the transparent space. */
const SPECIAL = '®°½¿™¢£♪à\u00a0èâêîôû';
/** Extended characters (0x12 and 0x13, 0x20-0x3F), each with the basic one sent before it for decoders without them. */
const EXTENDED_12 = 'ÁÉÓÚÜü‘¡*’—©℠•“”ÀÂÇÈÊËëÎÏïÔÙùÛ«»';
const FALLBACK_12 = 'AEOUUu\'!+\'-cs.""AACEEEeIIiOUuU""';
const EXTENDED_13 = 'ÃãÍÌìÒòÕõ{}\\^_|~ÄäÖöß¥¤¦ÅåØø┌┐└┘';
const FALLBACK_13 = "AaIIiOoOo()/'-!-AaOosYC!AaOo++++";

/** How each character is sent: one basic byte, or a two-byte code (sent twice) after a basic fallback. */
type Encoding = { basic: number } | { code: [number, number]; fallback?: number };

const ENCODINGS = ((): Map<string, Encoding> => {
  const map = new Map<string, Encoding>();
  const overridden = new Set(Object.keys(BASIC_OVERRIDES).map(Number));
  for (let byte = 0x20; byte < 0x7f; byte++)
    if (!overridden.has(byte)) map.set(String.fromCharCode(byte), { basic: byte });
  for (const [byte, char] of Object.entries(BASIC_OVERRIDES)) map.set(char, { basic: Number(byte) });
  map.set('’', { basic: 0x27 });
  map.set('`', { basic: 0x27 });
  [...SPECIAL].forEach((char, i) => map.set(char, { code: [0x11, 0x30 + i] }));
  const extended = (set: number, chars: string, fallbacks: string): void =>
    [...chars].forEach((char, i) => {
      if (!map.has(char)) map.set(char, { code: [set, 0x20 + i], fallback: fallbacks.charCodeAt(i) });
    });
  extended(0x12, EXTENDED_12, FALLBACK_12);
  extended(0x13, EXTENDED_13, FALLBACK_13);
  return map;
})();

/** The character's encoding: its own, that of the letter without its accents, or `?`'s (`replaced`). */
function encode(char: string): { encoding: Encoding; replaced: boolean } {
  const own = ENCODINGS.get(char);
  if (own) return { encoding: own, replaced: false };
  const stripped = ENCODINGS.get(char.normalize('NFD').replace(/\p{M}/gu, ''));
  return { encoding: stripped ?? ENCODINGS.get('?')!, replaced: true };
}

/** Text as the rows a roll-up caption shows: words wrapped at 32 columns, a longer word cut. */
export function captionRows(text: string): string[] {
  const rows: string[] = [];
  let row = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    let rest = [...word];
    if (row && row.length + 1 + rest.length > COLUMNS) {
      rows.push(row);
      row = '';
    }
    while (rest.length > COLUMNS - (row ? row.length + 1 : 0)) {
      const room = COLUMNS - (row ? row.length + 1 : 0);
      rows.push(row ? `${row} ${rest.slice(0, room).join('')}` : rest.slice(0, room).join(''));
      row = '';
      rest = rest.slice(room);
    }
    if (rest.length) row = row ? `${row} ${rest.join('')}` : rest.join('');
  }
  if (row) rows.push(row);
  return rows;
}

/** How captions appear: rolling in at the bottom row by row, or popping on whole. */
export type CaptionMode = 'roll-up' | 'pop-on';

export class Cea608Writer {
  readonly #queue: CcPair[] = [];
  #head = 0;
  /** The pair queued last: a control code queued again right after it needs a null pair between. */
  #last: CcPair | undefined;
  /** The pair taken last (what `#last` is again once the queue is cut back to what was taken). */
  #lastTaken: CcPair | undefined;
  /** The bottom row holds interim text, which the next caption writes over. */
  #interim = false;
  /** Where the open interim's pairs begin in the queue: those not taken yet are dropped when it is replaced. */
  #interimFrom: number | undefined;
  /** Characters sent as another (no encoding of their own), since the writer was made. */
  replaced = 0;
  /** Times captions waiting were dropped, more than `MAX_PENDING` pairs behind. */
  dropped = 0;

  /** `rollUpRows`: how many rows the roll-up shows (2 to 4). */
  constructor(
    private readonly mode: CaptionMode = 'roll-up',
    private readonly rollUpRows: 2 | 3 | 4 = 2,
  ) {}

  /** Pairs waiting to be sent. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * A caption: each of its rows rolls in at the bottom. Interim text (`final` false, as a speech
   * recogniser gives it while someone speaks) shows its last row on the bottom row, and the next
   * caption, interim or final, is written over it: what of it is still waiting is dropped, and the
   * row is rewritten from its first column, the rest of it deleted.
   */
  write(text: string, final = true): void {
    if (this.mode === 'pop-on') return this.#popOn(text, final);
    if (this.pending > MAX_PENDING) this.#dropWaiting();
    const rows = captionRows(text);
    const shown = final ? rows : rows.slice(-1);
    const replacing = this.#interim;
    if (replacing) this.#dropInterim();
    // The mode before every caption: a decoder that joins anywhere (a viewer, a new link, a
    // recording's part) and starts in no mode shows the next caption.
    const mode = withParity(MISC) * 256 + withParity(ROLL_UP[this.rollUpRows]);
    if (this.#last !== mode) this.#control(MISC, ROLL_UP[this.rollUpRows]);
    let from: number | undefined;
    shown.forEach((row, i) => {
      if (i > 0 || !replacing) this.#control(MISC, CARRIAGE_RETURN);
      if (i === shown.length - 1) from = this.#queue.length;
      this.#control(...PAC_ROW_15);
      this.#text(row);
      if (i === 0 && replacing) this.#control(MISC, DELETE_TO_END_OF_ROW);
    });
    this.#interim = !final;
    this.#interimFrom = final ? undefined : from;
  }

  /**
   * Pop-on: the caption is loaded into the memory not displayed, its rows at the bottom of the
   * screen, then the memories are swapped (end of caption): it appears whole, in place of the one
   * before. Interim text is not shown (it would flicker whole captions): the final text is.
   */
  #popOn(text: string, final: boolean): void {
    if (!final) return;
    if (this.pending > MAX_PENDING) this.#dropWaiting();
    const rows = captionRows(text).slice(-PAC_BOTTOM_ROWS.length);
    this.#control(MISC, RESUME_CAPTION_LOADING);
    this.#control(MISC, ERASE_NON_DISPLAYED_MEMORY);
    rows.forEach((row, i) => {
      const [first, second] = PAC_BOTTOM_ROWS[PAC_BOTTOM_ROWS.length - rows.length + i]!;
      this.#control(first, second);
      this.#text(row);
    });
    this.#control(MISC, END_OF_CAPTION);
  }

  /** Clears what the viewer sees (the last caption no longer stays on screen). */
  erase(): void {
    this.#control(MISC, ERASE_DISPLAYED_MEMORY);
    this.#interim = false;
    this.#interimFrom = undefined;
  }

  /** Up to `count` pairs for the next frame, oldest first; fewer (or none) when fewer wait. */
  take(count: number): CcPair[] {
    const end = Math.min(this.#queue.length, this.#head + count);
    const pairs = this.#queue.slice(this.#head, end);
    this.#head = end;
    if (pairs.length > 0) this.#lastTaken = pairs[pairs.length - 1];
    // What was taken leaves the array once it is all taken, or once it is long (captions that never stop).
    if (this.#head === this.#queue.length || this.#head >= COMPACT_AFTER) {
      this.#queue.splice(0, this.#head);
      if (this.#interimFrom !== undefined) this.#interimFrom = Math.max(0, this.#interimFrom - this.#head);
      this.#head = 0;
    }
    return pairs;
  }

  /** Drops every pair waiting; the next caption starts a row of its own. */
  #dropWaiting(): void {
    this.#queue.length = 0;
    this.#head = 0;
    this.#last = this.#lastTaken;
    this.#interim = false;
    this.#interimFrom = undefined;
    this.dropped++;
  }

  /** Drops what of the open interim is not sent yet (the row is rewritten from its first column next). */
  #dropInterim(): void {
    if (this.#interimFrom === undefined) return;
    this.#queue.length = Math.max(this.#interimFrom, this.#head);
    this.#last = this.#queue.length > this.#head ? this.#queue[this.#queue.length - 1] : this.#lastTaken;
  }

  #control(first: number, second: number): void {
    const pair = withParity(first) * 256 + withParity(second);
    // The same code again (two ♪ in a row) would be taken for the first one's redundant copy.
    if (this.#last === pair) this.#push(PAD_PAIR);
    this.#push(pair);
    this.#push(pair);
  }

  #push(pair: CcPair): void {
    this.#queue.push(pair);
    this.#last = pair;
  }

  #text(row: string): void {
    let pending: number | undefined;
    const flush = (): void => {
      if (pending !== undefined) this.#push(withParity(pending) * 256 + withParity(0));
      pending = undefined;
    };
    const basic = (byte: number): void => {
      if (pending === undefined) pending = byte;
      else {
        this.#push(withParity(pending) * 256 + withParity(byte));
        pending = undefined;
      }
    };
    for (const char of row) {
      const { encoding, replaced } = encode(char === '\u00a0' ? ' ' : char);
      if (replaced) this.replaced++;
      if ('basic' in encoding) basic(encoding.basic);
      else {
        if (encoding.fallback !== undefined) basic(encoding.fallback);
        flush();
        this.#control(...encoding.code);
      }
    }
    flush();
  }
}

/** The byte with bit 7 set or not so that it has an odd number of ones. */
export function withParity(byte: number): number {
  let ones = 0;
  for (let bit = byte & 0x7f; bit; bit >>= 1) ones += bit & 1;
  return ones % 2 === 1 ? byte & 0x7f : (byte & 0x7f) | 0x80;
}
