import { trackSize } from '../core/tracked.js';
import { open, rename } from 'node:fs/promises';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  mixerStartupSchema,
  type MixerAudioVideo,
  type MixerInfo,
  type MixerInputRequest,
  type MixerLabelRequest,
  type MixerLayoutRequest,
  type MixerStartup,
} from '../mixers/requests.js';
import { readOwnFile } from '../core/own-files.js';
import type { MediaPlane } from '../plane/plane.js';
import type { MixerCommands } from './commands.js';

/**
 * A mixer as it is kept: its startup request (its layout as last set), and its inputs in their order.
 * Read back, the file is parsed whole: it holds bytes, written by this or an earlier version.
 */
const keptMixerSchema = z.strictObject({
  request: mixerStartupSchema,
  inputs: z.array(
    z.strictObject({ streamName: z.string(), label: z.string(), audioMuted: z.boolean(), volume: z.number() }),
  ),
});
type KeptMixer = z.infer<typeof keptMixerSchema>;
const fileSchema = z.strictObject({ version: z.literal(1), mixers: z.array(keptMixerSchema) });

/**
 * Mixers started over REST, kept in a file of the data folder from their startup to their end on
 * purpose, so that a restart of the gateway forgets none: each is started again as it was (its
 * layout, its inputs with their labels and levels), each input a placeholder until its stream
 * publishes again, and the kept pushes of its stream go on with it. A mixer ends on purpose when it
 * is terminated, or when it ends by itself (its encoder failed: the log tells). Mixers the SDK starts
 * end with their session and are not kept. The file holds no secret: names, sizes, colours, file
 * names of `media_dir`, labels.
 */
export class MixerKeeper implements MixerCommands {
  readonly #kept = new Map<string, KeptMixer>();
  /** Writes of the file, one after another. */
  #writing: Promise<void> = Promise.resolve();
  #stopEvents: () => void = () => {};
  #closed = false;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: MixerKeeper): void {
    trackSize('kept_mixers', owner, (self) => self.#kept.size);
  }

  constructor(
    private readonly plane: MediaPlane,
    /** The file (in the data folder). */
    private readonly file: string,
    private readonly log: Logger,
  ) {
    MixerKeeper.#trackSizes(this);
  }

  /** Reads the kept mixers and starts them again: before the API is served. */
  async open(): Promise<void> {
    for (const mixer of await this.#read()) {
      try {
        await this.#restore(mixer);
        this.#kept.set(mixer.request.uri, mixer);
      } catch (error) {
        this.log.warn(
          { mixer: mixer.request.uri, reason: (error as Error).message },
          'a kept mixer could not start again: it is forgotten',
        );
        await this.plane.mixerTerminate(mixer.request.uri).catch(() => undefined); // what of it had started
      }
    }
    if (this.#kept.size) this.log.info({ count: this.#kept.size }, 'kept mixers started again');
    await this.#save();
    this.#stopEvents = this.plane.events((event) => {
      if (this.#closed || event.type !== 'mixer.ended' || !this.#kept.delete(event.mixer)) return;
      this.log.warn({ mixer: event.mixer, reason: event.reason }, 'a kept mixer ended by itself: it is forgotten');
      void this.#save();
    });
  }

  async startup(request: MixerStartup): Promise<MixerInfo> {
    const info = await this.plane.mixerStartup(request);
    this.#kept.set(request.uri, { request, inputs: [] });
    await this.#save();
    return info;
  }

  async add(request: MixerInputRequest): Promise<MixerInfo> {
    return this.#keep(await this.plane.mixerAdd(request));
  }

  async remove(request: { uri: string; remoteStreamName: string }): Promise<MixerInfo> {
    return this.#keep(await this.plane.mixerRemove(request));
  }

  async layout(request: MixerLayoutRequest): Promise<MixerInfo> {
    const info = await this.plane.mixerLayout(request);
    const kept = this.#kept.get(request.uri);
    if (kept) kept.request = { ...kept.request, layout: request.layout, pip: request.pip };
    return this.#keep(info);
  }

  async label(request: MixerLabelRequest): Promise<MixerInfo> {
    return this.#keep(await this.plane.mixerLabel(request));
  }

  async audioVideo(request: MixerAudioVideo): Promise<MixerInfo> {
    return this.#keep(await this.plane.mixerAudioVideo(request));
  }

  async terminate(uri: string): Promise<void> {
    // Forgotten first: its end, told by the plane, is then not taken for one by itself.
    const kept = this.#kept.delete(uri);
    try {
      await this.plane.mixerTerminate(uri);
    } finally {
      if (kept) await this.#save();
    }
  }

  /** Stops following the mixers, first at a shutdown: the mixers its closing ends stay kept. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopEvents();
    await this.#writing;
  }

  /** Keeps the inputs of a mixer as `info` tells them, in their order, when the mixer is kept. */
  async #keep(info: MixerInfo): Promise<MixerInfo> {
    const kept = this.#kept.get(info.uri);
    if (!kept) return info;
    kept.inputs = info.inputs.map(({ streamName, label, audioMuted, volume }) => ({
      streamName,
      label,
      audioMuted,
      volume,
    }));
    await this.#save();
    return info;
  }

  async #restore({ request, inputs }: KeptMixer): Promise<void> {
    await this.plane.mixerStartup(request);
    for (const input of inputs) {
      const { uri } = request;
      await this.plane.mixerAdd({ uri, remoteStreamName: input.streamName, label: input.label, waitForStream: true });
      if (input.audioMuted || input.volume !== 1)
        await this.plane.mixerAudioVideo({
          uri,
          remoteStreamName: input.streamName,
          audioMuted: input.audioMuted,
          volume: input.volume,
        });
    }
  }

  async #read(): Promise<KeptMixer[]> {
    let text: string;
    try {
      text = await readOwnFile(this.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn({ reason: (error as Error).message }, 'the kept mixers cannot be read: none are started again');
      return [];
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success) {
      this.log.warn(
        { reason: parsed.error.message.slice(0, 200) },
        'the kept mixers file is not as written: none are started again',
      );
      return [];
    }
    return parsed.data.mixers;
  }

  /** Writes every kept mixer: a new file, flushed, then renamed over the old, so a kill leaves one or the other whole. */
  #save(): Promise<void> {
    const text = JSON.stringify({ version: 1, mixers: [...this.#kept.values()] });
    const write = async (): Promise<void> => {
      const fresh = `${this.file}.new`;
      const handle = await open(fresh, 'w', 0o600);
      try {
        await handle.writeFile(text);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await rename(fresh, this.file);
    };
    this.#writing = this.#writing
      .then(write)
      .catch((error: Error) => this.log.error({ reason: error.message }, 'the kept mixers could not be written'));
    return this.#writing;
  }
}
