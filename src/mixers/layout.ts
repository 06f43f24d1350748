/**
 * Where each input of a mixer goes in its output picture. Pure: sizes in, rectangles out. Every
 * rectangle is a slot; the input is scaled into it keeping its aspect ratio (letterboxed), so a
 * slot's shape is the layout's choice alone. Coordinates and sizes are even (4:2:0 chroma).
 */

export const LAYOUTS = ['grid', 'side-by-side', 'picture-in-picture', 'speaker', 'desktop'] as const;
type LayoutKind = (typeof LAYOUTS)[number];

export const PIP_CORNERS = ['top-left', 'top-right', 'bottom-left', 'bottom-right'] as const;
type PipCorner = (typeof PIP_CORNERS)[number];

/** The most inputs a mixer composes. */
export const MAX_MIXER_INPUTS = 9;

export interface Slot {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LayoutOptions {
  kind: LayoutKind;
  /** Picture-in-picture: the corner the small pictures stand in, and their width as a fraction of the output's. */
  pip?: { corner: PipCorner; size: number };
}

/** The output's width and height. */
export interface Size {
  width: number;
  height: number;
}

/** Margin around picture-in-picture insets and between them, as a fraction of the output's width. */
const PIP_MARGIN = 0.02;
/** Speaker focus: the share of the height the speaker takes; the others share a strip below. */
const SPEAKER_SHARE = 0.75;

const even = (value: number): number => 2 * Math.floor(value / 2);

function slot(x: number, y: number, width: number, height: number): Slot {
  return { x: even(x), y: even(y), width: Math.max(2, even(width)), height: Math.max(2, even(height)) };
}

/**
 * The slots of `count` inputs (1 to MAX_MIXER_INPUTS), in input order. `focus` is the input shown
 * large by the speaker layout (the first by default).
 */
export function layoutSlots(options: LayoutOptions, size: Size, count: number, focus = 0): Slot[] {
  if (!Number.isInteger(count) || count < 0 || count > MAX_MIXER_INPUTS)
    throw new RangeError(`a mixer composes 0 to ${MAX_MIXER_INPUTS} inputs, not ${count}`);
  if (count === 0) return [];
  switch (options.kind) {
    case 'grid':
      return grid(size, count);
    case 'side-by-side':
      return row(size, count, 0, size.height);
    case 'picture-in-picture':
      return pictureInPicture(size, count, options.pip ?? { corner: 'bottom-right', size: 0.25 });
    case 'speaker':
      return speaker(size, count, Math.min(Math.max(0, focus), count - 1));
    case 'desktop':
      // A screen shared, as Web Call Server places it: the first input large, whoever speaks.
      return speaker(size, count, 0);
  }
}

/** Rows of equal cells, as square as the count allows; a last row left short is centred. */
function grid(size: Size, count: number): Slot[] {
  const columns = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  const width = size.width / columns;
  const height = size.height / rows;
  const slots: Slot[] = [];
  for (let i = 0; i < count; i++) {
    const r = Math.floor(i / columns);
    const inRow = r === rows - 1 ? count - r * columns : columns;
    const left = ((columns - inRow) * width) / 2;
    slots.push(slot(left + (i % columns) * width, r * height, width, height));
  }
  return slots;
}

/** `count` equal cells in one row, `height` high from `top`. */
function row(size: Size, count: number, top: number, height: number): Slot[] {
  const width = size.width / count;
  return Array.from({ length: count }, (_, i) => slot(i * width, top, width, height));
}

/**
 * The first input fills the picture; the others stand small in a corner, in a line along its edge,
 * then in further lines inwards; insets too many for the picture at the size asked are made smaller.
 */
function pictureInPicture(size: Size, count: number, pip: { corner: PipCorner; size: number }): Slot[] {
  const slots = [slot(0, 0, size.width, size.height)];
  const insets = count - 1;
  const margin = size.width * PIP_MARGIN;
  let width = size.width * pip.size;
  let height = (width * size.height) / size.width;
  let perLine = Math.max(1, Math.floor((size.height - margin) / (height + margin)));
  while (Math.ceil(insets / perLine) * (width + margin) + margin > size.width) {
    width *= 0.9;
    height *= 0.9;
    perLine = Math.max(1, Math.floor((size.height - margin) / (height + margin)));
  }
  const right = pip.corner.endsWith('right');
  const bottom = pip.corner.startsWith('bottom');
  for (let i = 0; i < insets; i++) {
    const across = Math.floor(i / perLine) * (width + margin);
    const along = (i % perLine) * (height + margin);
    const x = right ? size.width - margin - width - across : margin + across;
    const y = bottom ? size.height - margin - height - along : margin + along;
    slots.push(slot(x, y, width, height));
  }
  return slots;
}

/** The input in focus large at the top; the others in a strip below it. */
function speaker(size: Size, count: number, focus: number): Slot[] {
  if (count === 1) return [slot(0, 0, size.width, size.height)];
  const top = size.height * SPEAKER_SHARE;
  const strip = row(size, count - 1, top, size.height - top);
  const slots: Slot[] = [];
  for (let i = 0, s = 0; i < count; i++) slots.push(i === focus ? slot(0, 0, size.width, top) : strip[s++]!);
  return slots;
}

/** How loud an input must be above the one in focus, and for how long, before the focus moves. */
export interface FocusRules {
  /** dB above the input in focus. */
  marginDb: number;
  /** How long it must stay so (ms). */
  holdMs: number;
  /** The least time an input keeps the focus once it has it (ms). */
  minimumMs: number;
}

const DEFAULT_FOCUS_RULES: FocusRules = { marginDb: 6, holdMs: 1500, minimumMs: 2000 };

/**
 * Speaker focus with hysteresis: the loudest input is shown large, but the focus moves only to an
 * input louder than the one in focus by `marginDb` for `holdMs`, and never sooner than `minimumMs`
 * after it last moved, so a cough or two people talking at once does not make it flicker.
 */
export class SpeakerFocus {
  #focus = 0;
  #since: number;
  /** The input that has been louder, and since when. */
  #challenger: { input: number; since: number } | undefined;

  constructor(
    private readonly rules: FocusRules = DEFAULT_FOCUS_RULES,
    now = 0,
  ) {
    this.#since = now;
  }

  get focus(): number {
    return this.#focus;
  }

  /** Each input's level now (dBFS; -Infinity for silence or no audio); the input in focus after it. */
  update(levelsDb: readonly number[], now: number): number {
    if (this.#focus >= levelsDb.length) this.#move(0, now);
    let loudest = this.#focus;
    for (let i = 0; i < levelsDb.length; i++) if (levelsDb[i]! > levelsDb[loudest]!) loudest = i;
    const current = levelsDb[this.#focus] ?? -Infinity;
    if (loudest === this.#focus || levelsDb[loudest]! - current < this.rules.marginDb) {
      this.#challenger = undefined;
      return this.#focus;
    }
    if (this.#challenger?.input !== loudest) this.#challenger = { input: loudest, since: now };
    if (now - this.#challenger.since >= this.rules.holdMs && now - this.#since >= this.rules.minimumMs)
      this.#move(loudest, now);
    return this.#focus;
  }

  #move(input: number, now: number): void {
    this.#focus = input;
    this.#since = now;
    this.#challenger = undefined;
  }
}
