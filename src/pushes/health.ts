import { z } from 'zod';
import type { Platform } from '../links/platforms.js';

/**
 * Ingest health: what a platform's dashboard checks of a stream (its keyframe interval, bitrate and
 * frame rate, size changes, the sound and its rate, how far the video runs from the sound),
 * measured on what the push sent, over the last `WINDOW_S` seconds of its timeline, and held
 * against what the push's platform documents (or, with none, what every platform takes). Fed by
 * the output writer tag by tag: no timer, and nothing kept beyond the window.
 */

/** The window measured, in seconds of the stream sent. */
const WINDOW_S = 20;
/** Measures are told once this much of the stream was sent (s): before, a rate would say little. */
const SETTLE_S = 5;
/** A change of status is told (log, webhook) once it has held this long (s of the stream). */
const HOLD_S = 5;
/** A keyframe interval is judged with this much slack (s): timestamps in whole milliseconds, a frame's jitter. */
const KEYFRAME_SLACK_S = 0.25;
/** No keyframe for this many times the longest interval taken: they have stopped. */
const KEYFRAMES_STOPPED = 2;
/** What every platform takes, for a push with none: keyframes at most this far apart (s). */
const ANY_PLATFORM_KEYFRAME_S = 4;
/** Video and sound further apart than this in the stream (ms) is told. */
const MAX_AV_OFFSET_MS = 1000;
/** Below this frame rate a stream looks broken on every platform. */
const MIN_FPS = 10;
/** An FLV audio tag's sound format for AAC. */
const AAC_FORMAT = 10;
/** AAC's sample rates by their index in an AudioSpecificConfig. */
const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

const HEALTH_STATES = ['good', 'warning', 'bad'] as const;
export type HealthStatus = (typeof HEALTH_STATES)[number];

export const healthSchema = z.strictObject({
  status: z.enum(HEALTH_STATES),
  issues: z.array(z.string()).describe('What is off, each with what the platform takes'),
  measures: z.strictObject({
    keyframeIntervalMaxS: z
      .number()
      .nullable()
      .describe('The longest gap between keyframes sent (null before two were)'),
    sinceKeyframeS: z.number().describe('Since the last keyframe sent (since the start, if none was)'),
    keyframeIntervalMeanS: z.number().nullable(),
    videoKbps: z.number(),
    fps: z.number(),
    sizeChanges: z.number().describe('Picture size changes sent'),
    audio: z.boolean().describe('Sound was sent'),
    audioSampleRate: z.number().nullable(),
    audioKbps: z.number(),
    avOffsetMs: z
      .number()
      .nullable()
      .describe('How far the video runs ahead of the sound in the stream (negative: behind)'),
  }),
});
export type Health = z.infer<typeof healthSchema>;

/** One second of the stream sent. */
interface Second {
  at: number;
  videoBytes: number;
  frames: number;
  audioBytes: number;
}

export class IngestHealth {
  #seconds: Second[] = [];
  #keyframes: number[] = [];
  #resizes: number[] = [];
  #offsets: { at: number; ms: number }[] = [];
  #sampleRate: number | undefined;
  #lastAudio: number | undefined;
  #first: number | undefined;
  #last = 0;
  #status: HealthStatus | undefined;
  /** A status other than the one told, and since when (ms of the stream) it has held. */
  #candidate: { status: HealthStatus; since: number } | undefined;

  /**
   * `onChange`: the status, told once the stream settled, then each change that held `HOLD_S`.
   * `pictures`: whether the push carries video now; a push of sound alone (an audio-only publisher,
   * a mixer without video) is judged on its sound alone.
   */
  constructor(
    private readonly platform: Platform | undefined,
    private readonly onChange: (health: Health) => void = () => {},
    private readonly pictures: () => boolean = () => true,
  ) {}

  /** A video frame sent at `timestamp` (ms of the stream). */
  video(timestamp: number, bytes: number, keyframe: boolean): void {
    const second = this.#at(timestamp);
    second.videoBytes += bytes;
    second.frames++;
    if (keyframe) this.#keyframes.push(timestamp);
    if (this.#lastAudio !== undefined) this.#offsets.push({ at: timestamp, ms: timestamp - this.#lastAudio });
  }

  /** An AAC tag sent (its sequence header tells the sample rate). */
  audio(timestamp: number, body: Buffer): void {
    const aac = body.length >= 2 && body[0]! >> 4 === AAC_FORMAT;
    if (aac && body.length >= 4 && body[1] === 0) {
      const index = ((body[2]! & 0x07) << 1) | (body[3]! >> 7);
      this.#sampleRate = AAC_RATES[index];
      return;
    }
    this.#at(timestamp).audioBytes += body.length;
    this.#lastAudio = timestamp;
  }

  /** The picture size sent changed. */
  resized(): void {
    this.#resizes.push(this.#last);
  }

  /** A new connection's stream starts again from its own timeline: what was measured goes. */
  restart(): void {
    this.#seconds = [];
    this.#keyframes = [];
    this.#resizes = [];
    this.#offsets = [];
    this.#lastAudio = this.#first = undefined;
    this.#candidate = undefined;
    this.#last = 0;
  }

  /** The health over the window, once the stream has settled; undefined before. */
  get current(): Health | undefined {
    if (this.#first === undefined || this.#last - this.#first < SETTLE_S * 1000) return undefined;
    const measures = this.#measure();
    const issues = this.#judge(measures);
    const status: HealthStatus = issues.some((i) => i.bad) ? 'bad' : issues.length ? 'warning' : 'good';
    return { status, issues: issues.map((i) => i.text), measures };
  }

  #at(timestamp: number): Second {
    // A timeline that went back (a new connection, the 32-bit wrap after 49 days) starts afresh.
    if (timestamp < this.#last - 1000) this.restart();
    this.#first ??= timestamp;
    const before = Math.floor(this.#last / 1000);
    this.#last = Math.max(this.#last, timestamp);
    const at = Math.floor(timestamp / 1000);
    let second = this.#seconds.at(-1);
    if (!second || second.at < at) {
      second = { at, videoBytes: 0, frames: 0, audioBytes: 0 };
      this.#seconds.push(second);
    } else if (second.at > at) second = this.#seconds.find((s) => s.at === at) ?? second;
    if (at > before) this.#trim();
    return second;
  }

  /** Forgets what fell out of the window; tells a changed status (once a second of the stream). */
  #trim(): void {
    const from = this.#last - WINDOW_S * 1000;
    while (this.#seconds.length && this.#seconds[0]!.at * 1000 < from) this.#seconds.shift();
    // The keyframe just before the window stays: the first gap in it is measured from it.
    while (this.#keyframes.length > 1 && this.#keyframes[1]! < from) this.#keyframes.shift();
    while (this.#resizes.length && this.#resizes[0]! < from) this.#resizes.shift();
    while (this.#offsets.length && this.#offsets[0]!.at < from) this.#offsets.shift();
    const health = this.current;
    if (!health || health.status === this.#status) {
      this.#candidate = undefined;
      return;
    }
    // A machine out of CPU makes a stream flicker between states: a change is told once it held.
    if (this.#candidate?.status !== health.status) this.#candidate = { status: health.status, since: this.#last };
    if (this.#status !== undefined && this.#last - this.#candidate.since < HOLD_S * 1000) return;
    this.#status = health.status;
    this.#candidate = undefined;
    this.onChange(health);
  }

  #measure(): Health['measures'] {
    // Rates over whole seconds: the one being written is left out.
    const whole = this.#seconds.slice(0, -1);
    const spanS = Math.max(1, whole.length);
    const sum = (of: (s: Second) => number): number => whole.reduce((total, s) => total + of(s), 0);
    const gaps = this.#keyframes.slice(1).map((t, i) => (t - this.#keyframes[i]!) / 1000);
    const offsets = this.#offsets.map((o) => o.ms);
    const round = (n: number, to = 10): number => Math.round(n * to) / to;
    return {
      keyframeIntervalMaxS: gaps.length ? round(Math.max(...gaps)) : null,
      sinceKeyframeS: round((this.#last - (this.#keyframes.at(-1) ?? this.#first!)) / 1000),
      keyframeIntervalMeanS: gaps.length ? round(gaps.reduce((a, b) => a + b, 0) / gaps.length) : null,
      videoKbps: Math.round((sum((s) => s.videoBytes) * 8) / spanS / 1000),
      fps: round(sum((s) => s.frames) / spanS),
      sizeChanges: this.#resizes.length,
      audio: this.#lastAudio !== undefined && this.#last - this.#lastAudio < 2000,
      audioSampleRate: this.#sampleRate ?? null,
      audioKbps: Math.round((sum((s) => s.audioBytes) * 8) / spanS / 1000),
      avOffsetMs: offsets.length ? Math.round(offsets.reduce((a, b) => a + b, 0) / offsets.length) : null,
    };
  }

  #judge(m: Health['measures']): { text: string; bad: boolean }[] {
    const p = this.platform;
    const name = p?.title;
    const issues: { text: string; bad: boolean }[] = [];
    if (this.pictures()) this.#judgePictures(m, issues);
    if (!m.audio) issues.push({ text: 'no sound', bad: true });
    else if (m.audioSampleRate !== null && m.audioSampleRate !== 44100 && m.audioSampleRate !== 48000) {
      issues.push({ text: `sample rate ${m.audioSampleRate} Hz (44.1 or 48 kHz expected)`, bad: false });
    }
    if (p?.maxAudioKbps && m.audioKbps > p.maxAudioKbps * 1.1)
      issues.push({ text: `audio bitrate ${m.audioKbps} kb/s (${name}: at most ${p.maxAudioKbps})`, bad: false });
    return issues;
  }

  /** What a push that carries video is judged on besides its sound: keyframes, rates, size, and its offset from the sound. */
  #judgePictures(m: Health['measures'], issues: { text: string; bad: boolean }[]): void {
    const p = this.platform;
    const name = p?.title;
    const keyframeMax = p?.keyframeIntervalS.max ?? ANY_PLATFORM_KEYFRAME_S;
    const seconds = (n: number): string => `${n.toFixed(1)} s`;
    // Keyframes that stopped: no gap closes to be measured, and the stream cannot be joined.
    if (m.sinceKeyframeS > KEYFRAMES_STOPPED * keyframeMax) {
      const takes = name
        ? `${name}: at most ${keyframeMax} s apart`
        : `most platforms take them at most ${keyframeMax} s apart`;
      issues.push({ text: `no keyframe for ${seconds(m.sinceKeyframeS)} (${takes})`, bad: true });
    } else if (m.keyframeIntervalMaxS !== null && m.keyframeIntervalMaxS > keyframeMax + KEYFRAME_SLACK_S) {
      const takes = name ? `${name}: at most ${keyframeMax} s` : `most platforms take at most ${keyframeMax} s`;
      issues.push({ text: `keyframe interval ${seconds(m.keyframeIntervalMaxS)} (${takes})`, bad: true });
    } else if (
      p &&
      m.keyframeIntervalMaxS !== null &&
      m.keyframeIntervalMaxS > p.keyframeIntervalS.recommended + KEYFRAME_SLACK_S
    ) {
      issues.push({
        text: `keyframe interval ${seconds(m.keyframeIntervalMaxS)} (${name} asks for ${p.keyframeIntervalS.recommended} s)`,
        bad: false,
      });
    }
    if (p?.maxVideoKbps && m.videoKbps > p.maxVideoKbps * 1.1)
      issues.push({ text: `video bitrate ${m.videoKbps} kb/s (${name}: at most ${p.maxVideoKbps})`, bad: false });
    if (p?.maxFps && m.fps > p.maxFps + 1)
      issues.push({ text: `frame rate ${m.fps} (${name}: at most ${p.maxFps})`, bad: false });
    if (m.fps < MIN_FPS) issues.push({ text: `frame rate ${m.fps}`, bad: m.fps === 0 });
    if (m.sizeChanges)
      issues.push({
        text: `picture size changed ${m.sizeChanges} time${m.sizeChanges > 1 ? 's' : ''} in ${WINDOW_S} s`,
        bad: false,
      });
    if (m.avOffsetMs !== null && Math.abs(m.avOffsetMs) > MAX_AV_OFFSET_MS)
      issues.push({ text: `video ${m.avOffsetMs} ms from the sound in the stream`, bad: false });
  }
}
