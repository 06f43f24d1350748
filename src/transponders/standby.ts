import type { Logger } from 'pino';
import type { MediaKind } from '../media/codecs.js';
import { FlvTagType, type FlvTag } from '../media/flv.js';
import type { Publisher } from '../publishers/publisher.js';
import type { OutputWriter } from './output.js';
import type { Pipeline } from './pipeline.js';
import type { FailureKind } from './restore.js';
import type { TransponderState } from './states.js';

/** What standby needs of its transponder. */
export interface StandbyHost {
  readonly state: TransponderState;
  readonly isUp: boolean;
  readonly hasLink: boolean;
  readonly pipe: Pipeline | undefined;
  /** ffmpeg carries the publisher's video (it transcodes). */
  readonly videoInFfmpeg: boolean;
  readonly publisher: Publisher;
  readonly writer: OutputWriter;
  readonly log: Logger;
  readonly startTimeoutMs: number;
  transition(next: TransponderState): void;
  note(reason: string): void;
  lose(reason: string, kind: FailureKind, keepLink: boolean): void;
  startPipeline(): Promise<Pipeline>;
  usePipeline(pipe: Pipeline): void;
  dropPipeline(): Promise<void>;
  attachSource(first: boolean): void;
  detachSource(): void;
  stop(): Promise<void>;
}

const isKeyframeTag = (tag: FlvTag): boolean => tag.type === FlvTagType.VIDEO && tag.body[0]! >> 4 === 1 && tag.body[1] === 1;
const isAudioFrameTag = (tag: FlvTag): boolean => tag.type === FlvTagType.AUDIO && tag.body[1] === 1;

/**
 * A transponder's life without its publisher. When the publisher goes away (not ended on purpose),
 * the RTMP session is kept with the last keyframe sent as a still picture and silence (or the sound
 * being played): `standby`, until the stream is published again or the grace period ends, whose one
 * timer is here. When it comes back, live media replaces the still picture: at once for video the
 * gateway passes through; for transcoded video, which takes a while to come out of ffmpeg, the still
 * picture goes on (`resuming`) while the new pipeline is fed.
 *
 * Every switch is made before the old pipeline is broken: the new pipeline is fed while the current
 * one goes on (its mixer writes silence when no audio comes), and takes over at its first keyframe
 * (its first audio frame when it makes no video), or after the start-up timeout. However long
 * ffmpeg takes to start, the output does not pause. The still picture's output runs behind the
 * clock by as long as its ffmpeg took to start (it numbers frames from its own start): it goes on
 * until it has reached the new pipeline's first frame, so leaving it skips nothing.
 */
export class Standby {
  /** The publisher is away until it returns or this time passes. */
  #until: number | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  /** The pipeline about to take over, and the tags it wrote so far. */
  #pending: Pipeline | undefined;
  #held: FlvTag[] = [];
  /** The publisher-clock time of the pending pipeline's first frame that can take over, once it came. */
  #readyAt: { kind: MediaKind; wallclockMs: number } | undefined;
  #handOverTimer: NodeJS.Timeout | undefined;
  /** Counts pipeline switches: a switch overtaken by another, or by a loss, gives way. */
  #switches = 0;
  /** Switches under way: a pipeline they start is closed by them if it is no longer wanted. */
  readonly #switching = new Set<Promise<void>>();

  constructor(private readonly host: StandbyHost) {}

  /** The publisher went away and has not come back (in `standby`, or `reconnecting` meanwhile). */
  get awaiting(): boolean {
    return this.#until !== undefined;
  }

  /** When the grace period ends, while awaiting the publisher. */
  get until(): number | undefined {
    return this.#until;
  }

  /** The pipeline about to take over: the current one goes on meanwhile. */
  get pending(): Pipeline | undefined {
    return this.#pending;
  }

  /**
   * The publisher went away: hold the output with the still picture for `graceMs`, then end. False
   * when the output was not up (still starting, or ended): such a transponder ends with its publisher.
   */
  publisherLost(reason: string, graceMs: number): boolean {
    const { host } = this;
    const state = host.state;
    if (state !== 'running' && state !== 'resuming' && state !== 'reconnecting') return false;
    host.detachSource();
    this.#until = Date.now() + graceMs;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = setTimeout(() => this.#graceOver(graceMs), graceMs);
    host.note(`publisher lost: ${reason}`);
    host.log.info({ reason, graceMs }, 'publisher lost: holding the output with a still picture');
    if (state === 'running') {
      host.transition('standby');
      this.#startSwitch();
    } else if (state === 'resuming') {
      this.#switches++; // the still picture is still the pipeline: it goes on
      void this.dropPending();
      host.transition('standby');
    } else {
      host.writer.newSource(); // reconnecting: the restore opens the still picture
    }
    return true;
  }

  /** The stream is published again (the host has its new publisher and plan). */
  resume(): void {
    const { host } = this;
    this.#until = undefined;
    clearTimeout(this.#graceTimer);
    host.log.info('publisher back: live again');
    if (host.state === 'standby') {
      // Transcoded video takes a while to come out of the new pipeline: the current one goes on.
      host.transition(host.videoInFfmpeg && host.pipe ? 'resuming' : 'running');
      this.#startSwitch();
    } else {
      host.writer.newSource(); // reconnecting: the restore attaches the new publisher
    }
  }

  /** A loss: a switch under way gives way to the restore. */
  interrupt(): void {
    this.#switches++;
  }

  async dropPending(): Promise<void> {
    const pipe = this.#pending;
    this.#pending = undefined;
    this.#held = [];
    this.#readyAt = undefined;
    clearTimeout(this.#handOverTimer);
    await pipe?.close();
  }

  /**
   * The transponder ends: no timer of standby fires after this; resolves once a switch under way
   * has closed the pipeline it was starting (an ffmpeg must not outlive its transponder).
   */
  async close(): Promise<void> {
    this.#switches++;
    clearTimeout(this.#graceTimer);
    clearTimeout(this.#handOverTimer);
    await Promise.all(this.#switching);
  }

  #startSwitch(): void {
    const switching = this.#switch()
      .catch((error: unknown) => this.host.log.warn({ err: error }, 'switching the source failed'))
      .finally(() => this.#switching.delete(switching));
    this.#switching.add(switching);
  }

  #graceOver(graceMs: number): void {
    if (!this.awaiting) return;
    this.host.note(`the publisher did not come back within ${Math.round(graceMs / 100) / 10} s`);
    this.host.log.info({ graceMs }, 'publisher did not come back: ending the transponder');
    void this.host.stop();
  }

  /**
   * Replaces the pipeline for the current source (the still picture or the publisher), keeping the
   * link: the new source starts with its own codec headers and a keyframe, timestamps going on. The
   * current pipeline goes on until the new one takes over; when live video passed through replaces
   * the still picture, only its sound does.
   */
  async #switch(): Promise<void> {
    const { host } = this;
    const switchNo = ++this.#switches;
    void this.dropPending();
    host.writer.newSource();
    const current = host.pipe;
    if (current?.source.still) current.source.audioOnly = !this.awaiting && !host.videoInFfmpeg;
    let pipe: Pipeline;
    try {
      pipe = await host.startPipeline();
    } catch (error) {
      if (switchNo === this.#switches && host.isUp) host.lose((error as Error).message, 'local', true);
      return;
    }
    if (switchNo !== this.#switches || !host.isUp || !host.hasLink) {
      await pipe.close();
      return;
    }
    if (host.pipe) {
      this.#pending = pipe;
      pipe.onTags((tags) => this.#hold(pipe, tags));
      pipe.onLost((reason, kind) => {
        if (this.#pending !== pipe) return;
        this.#takeOver(pipe);
        host.lose(reason, kind, true);
      });
      // Without its first frame in time, it takes over anyway.
      this.#handOverTimer = setTimeout(() => this.#takeOver(pipe), host.startTimeoutMs);
    } else {
      host.usePipeline(pipe);
      if (host.state === 'resuming') host.transition('running');
    }
    host.attachSource(false);
  }

  #hold(pipe: Pipeline, tags: FlvTag[]): void {
    this.#held.push(...tags);
    if (!this.#readyAt) {
      const kind = pipe.source.still || pipe.source.transcoding ? 'video' : 'audio';
      const first = tags.find(kind === 'video' ? isKeyframeTag : isAudioFrameTag);
      if (!first) return;
      const startMs = kind === 'video' ? pipe.source.videoStartMs : pipe.source.audioStartMs;
      if (startMs === undefined) return this.#takeOver(pipe);
      this.#readyAt = { kind, wallclockMs: startMs + first.timestamp };
    }
    this.#takeOverIfReached(pipe);
  }

  /** The current pipeline wrote: a pending one ready to take over does once the output reached it. */
  currentWrote(): void {
    if (this.#pending && this.#readyAt) this.#takeOverIfReached(this.#pending);
  }

  /**
   * Takes over once the output has reached the pending pipeline's first frame: at once from live
   * media (its input is gone, nothing more comes of it), from the still picture once it got there.
   */
  #takeOverIfReached(pipe: Pipeline): void {
    const ready = this.#readyAt;
    if (!ready) return;
    const { timeline } = this.host.writer;
    const frameMs = 1000 / (this.host.publisher.frameRate ?? 30);
    if (!this.host.pipe?.source.still || timeline.last(ready.kind) + frameMs >= timeline.at(ready.wallclockMs)) this.#takeOver(pipe);
  }

  /** The pending pipeline replaces the current one, what it held going out first. */
  #takeOver(pipe: Pipeline): void {
    const { host } = this;
    if (this.#pending !== pipe) return;
    clearTimeout(this.#handOverTimer);
    const held = this.#held;
    this.#pending = undefined;
    this.#held = [];
    this.#readyAt = undefined;
    void host.dropPipeline();
    host.usePipeline(pipe);
    // Its first keyframe was captured before the last still frames were sent: its timeline is moved
    // on to one frame after them, audio and video alike.
    const keyframe = held.find((tag) => tag.type === FlvTagType.VIDEO && tag.body[1] === 1);
    if (keyframe && pipe.source.videoStartMs !== undefined) {
      const frameMs = 1000 / (host.publisher.frameRate ?? 30);
      pipe.source.shiftMs = host.writer.timeline.shiftFor(pipe.source.videoStartMs + keyframe.timestamp, frameMs);
    }
    if (host.state === 'resuming') host.transition('running');
    for (const tag of held) host.writer.writeTag(tag, pipe.source);
  }
}
