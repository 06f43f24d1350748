/**
 * A strict CEA-608 (CC1) reader for the tests, as the decoders that start in no mode read captions
 * (Shaka Player's, mux.js's): it shows nothing until a mode command (roll-up RU2/RU3/RU4, or pop-on's
 * resume caption loading) tells it how. ffmpeg's decoder, which starts in roll-up, would show text
 * a stream never set a mode for, so it cannot tell a stream that sends its mode once from one that
 * repeats it. Its character tables are written out from the standard again, not taken from the
 * gateway's writer: an oracle that shared the writer's tables would read back any mistake in them.
 */

/** A caption shown: roll-up's row once a carriage return rolls it up (or the stream ends), pop-on's once swapped in. */
export interface ShownCaption {
  /** Which pair of the stream showed it, counted from 0. */
  pair: number;
  text: string;
}

const SPECIAL = '®°½¿™¢£♪à èâêîôû';
const EXTENDED_12 = 'ÁÉÓÚÜü‘¡*’—©℠•“”ÀÂÇÈÊËëÎÏïÔÙùÛ«»';
const EXTENDED_13 = 'ÃãÍÌìÒòÕõ{}\\^_|~ÄäÖöß¥¤¦ÅåØø┌┐└┘';
const BASIC: Record<number, string> = {
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

export class Cea608Reader {
  readonly shown: ShownCaption[] = [];
  /** Characters written while no mode was set: what a decoder of this kind never shows. */
  refused = 0;
  #mode: 'none' | 'roll-up' | 'pop-on' = 'none';
  #row = '';
  #loading = '';
  #lastControl: number | undefined;
  #pairs = 0;

  /** The next byte pair (16 bits, parity bits included). */
  pair(pair: number): void {
    const at = this.#pairs++;
    const first = (pair >> 8) & 0x7f;
    const second = pair & 0x7f;
    if (first >= 0x10 && first <= 0x1f) {
      // A control code is sent twice: the repeat is ignored.
      if (this.#lastControl === pair) {
        this.#lastControl = undefined;
        return;
      }
      this.#lastControl = pair;
      this.#control(first, second, at);
      return;
    }
    this.#lastControl = undefined;
    for (const byte of [first, second]) if (byte >= 0x20) this.#char(BASIC[byte] ?? String.fromCharCode(byte));
  }

  /** The stream ended: a roll-up row still on screen counts as shown. */
  end(): void {
    if (this.#mode === 'roll-up' && this.#row.trim()) this.shown.push({ pair: this.#pairs, text: this.#row.trim() });
    this.#row = '';
  }

  #control(first: number, second: number, at: number): void {
    // A preamble address code: a new row (pop-on's rows are shown with a space between them).
    if (second >= 0x40) {
      if (this.#mode === 'pop-on' && this.#loading) this.#loading += ' ';
      if (this.#mode === 'roll-up') this.#row = '';
      return;
    }
    if (first === 0x14 || first === 0x1c) {
      if (second >= 0x25 && second <= 0x27) {
        this.#mode = 'roll-up';
        return;
      }
      if (second === 0x20) {
        this.#mode = 'pop-on';
        return;
      }
      if (this.#mode === 'none') return;
      if (second === 0x2d && this.#mode === 'roll-up') {
        if (this.#row.trim()) this.shown.push({ pair: at, text: this.#row.trim() });
        this.#row = '';
      } else if (second === 0x2c) {
        if (this.#mode === 'roll-up') this.#row = '';
      } else if (second === 0x2e) this.#loading = '';
      else if (second === 0x2f && this.#mode === 'pop-on') {
        if (this.#loading.trim()) this.shown.push({ pair: at, text: this.#loading.trim() });
        this.#loading = '';
      }
      return;
    }
    if ((first === 0x11 || first === 0x19) && second >= 0x30 && second <= 0x3f)
      return this.#char(SPECIAL[second - 0x30]!);
    if ((first === 0x12 || first === 0x13) && second >= 0x20 && second <= 0x3f) {
      // An extended character takes the place of the basic one sent before it.
      this.#backspace();
      return this.#char((first === 0x12 ? EXTENDED_12 : EXTENDED_13)[second - 0x20]!);
    }
  }

  #char(char: string): void {
    if (this.#mode === 'none') {
      this.refused++;
      return;
    }
    if (this.#mode === 'roll-up') this.#row += char;
    else this.#loading += char;
  }

  #backspace(): void {
    if (this.#mode === 'roll-up') this.#row = this.#row.slice(0, -1);
    else if (this.#mode === 'pop-on') this.#loading = this.#loading.slice(0, -1);
  }
}

/** A triplet's cc_type 0 (608 data of field 1), valid, with its marker bits. */
const FIELD_1_VALID = 0xfc;
const GA94 = Buffer.from('GA94');

/** The CC1 byte pairs an SEI NAL unit (no start code) carries in A/53 user data; none for any other NAL unit. */
export function seiPairs(nal: Buffer): number[] {
  if ((nal[0]! & 0x1f) !== 6) return [];
  const rbsp = unescape(nal.subarray(1));
  const at = rbsp.indexOf(GA94);
  if (at < 0 || rbsp[at + 4] !== 0x03) return [];
  const count = rbsp[at + 5]! & 0x1f;
  const pairs: number[] = [];
  for (let i = 0; i < count; i++) {
    const triplet = at + 7 + i * 3;
    if (rbsp[triplet] === FIELD_1_VALID) pairs.push((rbsp[triplet + 1]! << 8) | rbsp[triplet + 2]!);
  }
  return pairs;
}

/** Each access unit's CC1 pairs in an H.264 Annex B stream (`ffmpeg -c copy -bsf:v h264_mp4toannexb -f h264`). */
export function annexBPairs(stream: Buffer): number[][] {
  const units: number[][] = [];
  let current: number[] | undefined;
  for (const nal of annexBNals(stream)) {
    const type = nal[0]! & 0x1f;
    if (type === 9 || current === undefined) units.push((current = []));
    current.push(...seiPairs(nal));
    // A slice ends the access unit's SEI: the next SEI belongs to the next one.
    if (type >= 1 && type <= 5) current = undefined;
  }
  return units.filter((pairs) => pairs.length > 0);
}

function annexBNals(stream: Buffer): Buffer[] {
  const starts: number[] = [];
  for (let i = 0; i + 3 <= stream.length; i++)
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  return starts.map((start, i) => {
    let end = i + 1 < starts.length ? starts[i + 1]! - 3 : stream.length;
    while (end > start && stream[end - 1] === 0) end--;
    return stream.subarray(start, end);
  });
}

/** Removes H.264's emulation prevention bytes (0x03 after two zero bytes). */
function unescape(bytes: Buffer): Buffer {
  const out: number[] = [];
  let zeros = 0;
  for (const byte of bytes) {
    if (zeros >= 2 && byte === 3) {
      zeros = 0;
      continue;
    }
    out.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return Buffer.from(out);
}
