import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { monotonicMs, wallClockMs } from '../core/clock.js';
import type { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import type { LocalTarget } from '../ingest/engine.js';
import type { Publisher } from '../publishers/publisher.js';
import { Canvas, yuvOf, type Yuv } from './canvas.js';
import { MixerInput } from './input.js';
import { layoutSlots, MAX_MIXER_INPUTS, SpeakerFocus, type LayoutOptions, type Size, type Slot } from './layout.js';
import type { Overlay } from '../pipeline/overlays.js';
import { encoderArgs } from './mixer-args.js';
import type { InputSource } from './relay.js';
import { SoundMix } from './sound.js';

export interface MixerSpec {
  /** The stream the mixer publishes. */
  name: string;
  /** false: a mixer of sound alone (no picture, no decoder of its inputs' video). */
  hasVideo: boolean;
  layout: LayoutOptions;
  size: Size;
  frameRate: number;
  /** The request's background (`#rrggbb` or a file name), and the picture it makes. */
  background: string;
  backgroundPicture: Yuv | Buffer;
  overlays: readonly Overlay[];
  videoBitrateKbps: number;
  audioBitrateKbps: number;
}

export interface MixerDeps {
  supervisor: FfmpegSupervisor;
  ffmpegPath: string;
  preset: string;
  keyframeIntervalS: number;
  log: Logger;
}

/** How far behind now the sound is mixed (ms): the inputs' packets that come late by less still count. */
const SOUND_LAG_MS = 60;
/**
 * How much later than the pictures the sound is timestamped (ms): the time an input's picture
 * takes to be drawn that its sound does not take (its decoder gives a picture out when the next
 * frame comes in, 33 ms at 30 fps; then the mixer's next picture, half of one on average).
 * Measured in the benchmark: an input's picture and sound come out together within ±30 ms.
 */
const SOUND_DELAY_MS = 45;
/** Where the encoder's first sound stands after its first picture (ms): the sound's delay, less Opus's look-ahead (312 samples). */
export const SOUND_START_MS = SOUND_DELAY_MS - 6.5;
/** How often the mixer looks whether a picture or sound is due (ms). */
const TICK_MS = 5;
/** Sound is written in blocks of this many frames (10 ms). */
const SOUND_BLOCK = 480;
/** Pictures the encoder may have waiting in its pipe: the mixer waits with the next ones until it has read them. */
const MAX_QUEUED_PICTURES = 3;
/**
 * Pictures due and not yet written (an encoder behind, the thread held) are written when the
 * encoder takes them, for every picture stands for its moment: the encoder times them by their
 * count. Behind by more than this (s), the encoder does not keep up: they are given up, and the
 * pictures come out that much behind the sound.
 */
const MAX_BEHIND_S = 1;
/** How long the other inputs' decoders wait for the first picture of an input added before they are made for their new slots (ms). */
const RESIZE_AFTER_MS = 1000;
/** An input without a picture: a dark grey slot. */
const PLACEHOLDER: Yuv = yuvOf('#303030');

/**
 * A mixer: one picture made from several published streams, each in a slot of the layout, and
 * their sounds mixed; published as a stream of its own (`output`), so it is pushed, recorded and
 * watched as any stream is. The picture is composed here at a constant frame rate, whatever the
 * inputs do: an input without a picture (not yet, or its publisher lost) is a placeholder, and
 * inputs come, go and move without the output stopping. One encoder for the whole mixer.
 */
export class Mixer {
  readonly inputs: MixerInput[] = [];
  readonly createdAt = wallClockMs();
  /** The picture it composes; none for a mixer of sound alone. */
  readonly #canvas: Canvas | undefined;
  readonly #sound = new SoundMix();
  readonly #focus = new SpeakerFocus();
  readonly #encoder: FfmpegProcess;
  readonly #timer: NodeJS.Timeout;
  readonly #startMs: number;
  #layout: LayoutOptions;
  #slots: Slot[] = [];
  #pictures = 0;
  #closed: Promise<void> | undefined;
  /** Its inputs' labels, as files their decoders read (removed with the mixer); made once its encoder spawned. */
  readonly #labels: string;
  #added = 0;

  constructor(
    readonly spec: MixerSpec,
    /** The stream it publishes, and where its encoder sends that stream's RTP. */
    readonly output: Publisher,
    targets: readonly LocalTarget[],
    private readonly deps: MixerDeps,
    private readonly onEnded: (reason: string) => void,
    /** Its time 0 on the monotonic clock: now, or hours back for a test of a mixer that ran that long. */
    startMs = monotonicMs(),
  ) {
    this.#layout = spec.layout;
    this.#canvas = spec.hasVideo ? new Canvas(spec.size, spec.backgroundPicture) : undefined;
    this.#encoder = deps.supervisor.spawn(
      deps.ffmpegPath,
      encoderArgs({
        ...spec,
        targets,
        preset: deps.preset,
        keyframeIntervalS: deps.keyframeIntervalS,
        soundDelayMs: SOUND_DELAY_MS,
      }),
      (event, error) => deps.log.error({ err: error, event }, 'mixer encoder listener failed'),
      spec.hasVideo ? 'video' : undefined,
    );
    this.#encoder.on('line', (line) => deps.log.warn({ ffmpeg: line }, 'mixer encoder'));
    this.#encoder.on('exit', (code) => {
      if (!this.#closed) void this.close(`the mixer's encoder ended (exit code ${code})`);
    });
    this.#labels = mkdtempSync(join(tmpdir(), 'mixer-'));
    this.#startMs = startMs;
    this.#timer = setInterval(() => {
      try {
        this.#tick();
      } catch (error) {
        // A fault of the gateway's own: the mixer ends, the process goes on.
        deps.log.error({ err: error }, 'mixer tick failed');
        void this.close(`the mixer failed: ${(error as Error).message}`);
      }
    }, TICK_MS);
  }

  get layout(): LayoutOptions {
    return this.#layout;
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Pictures sent to the encoder. */
  get pictures(): number {
    return this.#pictures - this.skipped;
  }

  /** Pictures given up because the encoder did not keep up (see `MAX_BEHIND_S`). */
  skipped = 0;

  /** Adds the stream `name` (at `slot`, 0-based, or after the others), labelled; `publisher`, when it publishes now. */
  add(name: string, publisher: InputSource | undefined, slot?: number, label?: string): MixerInput {
    if (this.inputs.length >= MAX_MIXER_INPUTS) throw new RangeError(`a mixer has at most ${MAX_MIXER_INPUTS} inputs`);
    const input = new MixerInput(
      name,
      this.deps,
      this.#startMs,
      join(this.#labels, `input-${++this.#added}.txt`),
      label,
    );
    this.inputs.splice(slot === undefined ? this.inputs.length : Math.min(slot, this.inputs.length), 0, input);
    this.#relayout(input);
    if (publisher) input.attach(publisher); // its decoder, fed the cached keyframe once
    this.#resizeOthersOnceShown(input);
    return input;
  }

  /** Removes the stream `name`; false when it is not an input. */
  remove(name: string): boolean {
    const at = this.inputs.findIndex((input) => input.stream === name);
    if (at < 0) return false;
    void this.inputs.splice(at, 1)[0]!.close();
    this.#relayout();
    return true;
  }

  input(name: string): MixerInput | undefined {
    return this.inputs.find((input) => input.stream === name);
  }

  setLayout(layout: LayoutOptions): void {
    this.#layout = layout;
    this.#relayout();
  }

  /** Ends it; every call, the first or a later one, resolves once it has ended. */
  close(reason: string): Promise<void> {
    this.#closed ??= this.#close(reason);
    return this.#closed;
  }

  async #close(reason: string): Promise<void> {
    clearInterval(this.#timer);
    this.deps.log.info({ reason }, 'mixer ended');
    await Promise.all([
      ...this.inputs.map((input) => input.close()),
      this.#encoder.stop(1000),
      this.output.close(reason),
    ]);
    rmSync(this.#labels, { recursive: true, force: true });
    this.onEnded(reason);
  }

  /**
   * Places the inputs in the layout: each input's decoder is made anew for the size of its new
   * slot (its old picture drawn there, cropped, until the new one has one). With `first`, an input
   * just added, only its slot is set now (`#resizeOthersOnceShown` does the others').
   */
  #relayout(first?: MixerInput): void {
    if (!this.spec.hasVideo) return; // no slots: its inputs' video is not decoded
    this.#slots = layoutSlots(this.#layout, this.spec.size, this.inputs.length, this.#focus.focus);
    this.inputs.forEach((input, i) => {
      if (!first || input === first) input.resize(this.#slots[i]!);
    });
  }

  /**
   * The other inputs' decoders are made for their new slots once `first` shows its picture (or
   * after `RESIZE_AFTER_MS`): a machine starting them all at once would hold that picture back.
   */
  #resizeOthersOnceShown(first: MixerInput): void {
    if (!this.spec.hasVideo) return;
    const rest = (): void => {
      if (!this.#closed) this.inputs.forEach((input, i) => input.resize(this.#slots[i]!));
    };
    const timer = setTimeout(rest, RESIZE_AFTER_MS);
    timer.unref();
    first.onceShown(() => {
      clearTimeout(timer);
      rest();
    });
  }

  /** Sends the pictures and sound that are due, on the mixer's clock. */
  #tick(): void {
    const now = monotonicMs();
    const elapsedMs = now - this.#startMs;
    if (this.#canvas) this.#picturesDue(this.#canvas, elapsedMs);
    const soundDue = Math.floor(((elapsedMs - SOUND_LAG_MS) * 48000) / 1000);
    if (soundDue - this.#sound.position > MAX_BEHIND_S * 48000) {
      // Behind by more than the pictures may be (the thread held, or the first tick of a mixer
      // started in the past): the sound jumps to now, as the pictures do, rather than mixing it all.
      this.#sound.position = soundDue - SOUND_BLOCK;
    }
    while (soundDue - this.#sound.position >= SOUND_BLOCK) {
      const pcm = this.#sound.mix(
        this.inputs.map((input) => input.sound),
        SOUND_BLOCK,
      );
      this.#encoder.write(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    }
    if (this.#canvas && this.#layout.kind === 'speaker' && this.inputs.length > 1) {
      const before = this.#focus.focus;
      if (
        this.#focus.update(
          this.inputs.map((input) => input.sound.levelDb),
          now,
        ) !== before
      )
        this.#relayout();
    }
  }

  /** Composes and writes the pictures due `elapsedMs` into the mixer's time. */
  #picturesDue(canvas: Canvas, elapsedMs: number): void {
    const due = Math.floor((elapsedMs * this.spec.frameRate) / 1000) + 1;
    if (due - this.#pictures > MAX_BEHIND_S * this.spec.frameRate) {
      this.skipped += due - 1 - this.#pictures;
      this.deps.log.warn(
        { skipped: due - 1 - this.#pictures },
        "the mixer's encoder does not keep up: pictures given up",
      );
      this.#pictures = due - 1;
    }
    while (this.#pictures < due && this.#encoder.videoBacklog <= MAX_QUEUED_PICTURES * canvas.data.length) {
      this.#pictures++;
      this.#compose(canvas);
      const picture = canvas.data;
      this.#encoder.writeVideo(picture, () => canvas.release(picture));
    }
  }

  #compose(canvas: Canvas): void {
    canvas.clear();
    this.inputs.forEach((input, i) => {
      const slot = this.#slots[i]!;
      const picture = input.picture;
      if (picture) canvas.draw(slot, picture.data, picture.size);
      else canvas.fill(slot, PLACEHOLDER);
    });
  }
}
