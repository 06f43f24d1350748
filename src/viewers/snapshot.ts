import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import type { VideoFrame } from '../media/sinks.js';
import { keyframeJpegs, PicturesError } from './keyframe-jpegs.js';

/** Keyframes one ffmpeg decodes at most. */
const MAX_BATCH = 32;
/**
 * How long the first keyframe asked for waits for others: a round of thumbnails reaches a worker
 * thread as one message per stream, and becomes one ffmpeg.
 */
const GATHER_MS = 20;

interface Wanted {
  keyframe: VideoFrame;
  width: number;
  resolve(jpeg: Buffer): void;
  reject(error: Error): void;
}

/**
 * The JPEG of each keyframe, made once: requests for the same keyframe share one decode, and its
 * picture is reused until the publisher has a newer keyframe (the old one is then collected with its
 * picture). A failed decode is forgotten so that the next request tries again.
 *
 * The holder decodes with one ffmpeg at a time: the keyframes asked for while one runs are decoded
 * together by the next, those of one codec, size and width asked for in one ffmpeg (`keyframeJpegs`), as ffmpeg's start
 * costs several times a picture. When a batch fails on its input, each of its keyframes is tried
 * alone, so that one broken keyframe costs no other stream its picture; one stopped (its time up,
 * the gateway closing) fails them all.
 */
export class KeyframePictures {
  /** Per keyframe, its pictures by width (0: its own size). */
  readonly #pictures = new WeakMap<VideoFrame, Map<number, Promise<Buffer>>>();
  #waiting: Wanted[] = [];
  #decoding = false;

  constructor(
    private readonly ffmpeg: FfmpegSupervisor,
    private readonly ffmpegPath: string,
  ) {}

  /** The keyframe's picture, at most `width` wide (0: its own size). */
  jpeg(keyframe: VideoFrame, width = 0): Promise<Buffer> {
    let pictures = this.#pictures.get(keyframe);
    if (!pictures) this.#pictures.set(keyframe, (pictures = new Map<number, Promise<Buffer>>()));
    let picture = pictures.get(width);
    if (!picture) {
      picture = new Promise<Buffer>((resolve, reject) => this.#waiting.push({ keyframe, width, resolve, reject }));
      pictures.set(width, picture);
      picture.catch(() => pictures.delete(width));
      if (!this.#decoding) {
        this.#decoding = true;
        setTimeout(() => void this.#decodeWaiting(), GATHER_MS);
      }
    }
    return picture;
  }

  async #decodeWaiting(): Promise<void> {
    while (this.#waiting.length > 0) {
      const groups = new Map<string | Wanted, Wanted[]>();
      for (const wanted of this.#waiting.splice(0, MAX_BATCH)) {
        const { codec, size } = wanted.keyframe;
        // A size not known, or AV1's (its sequence header's largest, not the picture's): decoded alone.
        const key = size && codec !== 'AV1' ? `${codec}:${size.width}x${size.height}:${wanted.width}` : wanted;
        groups.set(key, [...(groups.get(key) ?? []), wanted]);
      }
      for (const group of groups.values()) await this.#decode(group);
    }
    this.#decoding = false;
  }

  async #decode(group: Wanted[]): Promise<void> {
    try {
      const jpegs = await keyframeJpegs(
        group.map((w) => w.keyframe),
        group[0]!.width,
        this.ffmpeg,
        this.ffmpegPath,
      );
      group.forEach((wanted, i) => wanted.resolve(jpegs[i]!));
    } catch (error) {
      // Stopped rather than failed (its time up, the gateway closing): nothing is tried again.
      if (group.length === 1 || (error instanceof PicturesError && error.killed)) {
        for (const wanted of group) wanted.reject(error as Error);
        return;
      }
      for (const wanted of group) await this.#decode([wanted]);
    }
  }
}
