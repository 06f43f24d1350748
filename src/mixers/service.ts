import { trackSize } from '../core/tracked.js';
import type { Logger } from 'pino';
import { conflict, invalid, notFound, unavailable } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { MIXER_EVENTS } from '../core/lifecycle-events.js';
import type { Publisher } from '../publishers/publisher.js';
import type { PublisherRegistry } from '../publishers/registry.js';
import type { MessagePort } from 'node:worker_threads';
import { mixerImages } from './images.js';
import { RelayedSource, relayStream } from './relay.js';
import { MAX_MIXER_INPUTS } from './layout.js';
import { Mixer, SOUND_START_MS, type MixerDeps } from './mixer.js';
import {
  mixerStream,
  type MixerAudioVideo,
  type MixerInfo,
  type MixerInputRequest,
  type MixerLabelRequest,
  type MixerLayoutRequest,
  type MixerStartup,
} from './requests.js';

/** What webhooks are told of a mixer: its URI, its stream, the input concerned, why it ended. */
export interface MixerEvent {
  mixer: string;
  stream: string;
  input?: string;
  reason?: string;
}

export type MixerServiceEvents = { event: [{ type: (typeof MIXER_EVENTS)[number] } & MixerEvent] };

/**
 * The mixers of one holder (a worker thread, or the main thread with `workers: 0`): started, given
 * inputs, ended. An input is a stream published here; it may go and come back (its slot shows a
 * placeholder meanwhile). A mixer's output is a stream like
 * any, so it can be another mixer's input, but never, directly or through other mixers, its own.
 */
export class MixerService extends TypedEmitter<MixerServiceEvents> {
  readonly #mixers = new Map<string, Mixer>();
  readonly #starting = new Set<string>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: MixerService): void {
    trackSize('mixers', owner, (self) => self.#mixers.size);
    trackSize('mixers_starting', owner, (self) => self.#starting.size);
  }

  constructor(
    private readonly registry: PublisherRegistry,
    private readonly deps: MixerDeps & { maxMixers: number; mediaDir: string },
    private readonly log: Logger,
  ) {
    super((event, error) => log.error({ err: error, event }, 'mixer listener failed'));
    MixerService.#trackSizes(this);
    registry.on('publishing', (publisher) => {
      for (const mixer of this.#mixers.values()) {
        const input = mixer.input(publisher.name);
        if (input && input.publisher !== publisher) input.attach(publisher);
      }
    });
    registry.on('closed', (publisher, reason) => {
      for (const mixer of this.#mixers.values()) {
        if (mixer.output === publisher) void mixer.close(`its stream ended: ${reason}`);
        const input = mixer.input(publisher.name);
        if (input?.publisher === publisher) void input.detach();
      }
    });
  }

  async startup(request: MixerStartup): Promise<MixerInfo> {
    const { uri } = request;
    if (this.#mixers.has(uri) || this.#starting.has(uri)) throw conflict(`uri: ${uri} already runs`, 'uri');
    if (this.#mixers.size + this.#starting.size >= this.deps.maxMixers)
      throw unavailable(`the gateway is at its limit of ${this.deps.maxMixers} mixers (limit_mixers)`);
    const name = mixerStream(request);
    this.#starting.add(uri);
    try {
      const images = await mixerImages(request, {
        mediaDir: this.deps.mediaDir,
        supervisor: this.deps.supervisor,
        ffmpegPath: this.deps.ffmpegPath,
      });
      const { hasVideo, hasAudio } = request;
      const { publisher, targets } = await this.registry.publishLocal(name, {
        ...(hasVideo ? { video: { startMs: 0 } } : {}),
        ...(hasAudio ? { audio: { startMs: SOUND_START_MS } } : {}),
      });
      const spec = {
        name,
        hasVideo,
        layout: { kind: request.layout, pip: request.pip },
        size: { width: request.width, height: request.height },
        frameRate: request.fps,
        background: request.background,
        backgroundPicture: images.background,
        overlays: images.overlays,
        videoBitrateKbps: request.videoBitrate,
        audioBitrateKbps: request.audioBitrate,
      };
      let mixer: Mixer;
      try {
        const log = this.log.child({ mixer: uri });
        mixer = new Mixer(spec, publisher, targets, { ...this.deps, log }, (reason) => {
          if (this.#mixers.get(uri) === mixer) this.#mixers.delete(uri);
          this.safeEmit('event', { type: 'mixer.ended', mixer: uri, stream: name, reason });
        });
      } catch (error) {
        await publisher.close('the mixer could not start');
        throw error;
      }
      this.#mixers.set(uri, mixer);
      this.log.info({ mixer: uri, stream: name }, 'mixer started');
      this.safeEmit('event', { type: 'mixer.started', mixer: uri, stream: name });
      return this.#describe(uri, mixer);
    } finally {
      this.#starting.delete(uri);
    }
  }

  /**
   * Adds an input: the stream publishing here, or, with `relay`, one publishing in another worker
   * thread whose media comes over that port (`relayStream`); a relay for an input that waits for
   * its stream (published again elsewhere) gives it its media back.
   */
  add(request: MixerInputRequest, relay?: MessagePort): MixerInfo {
    try {
      return this.#add(request, relay);
    } catch (error) {
      relay?.close(); // the other worker's relay ends with it
      throw error;
    }
  }

  #add(request: MixerInputRequest, relay?: MessagePort): MixerInfo {
    const mixer = this.#get(request.uri);
    const stream = request.remoteStreamName;
    const existing = mixer.input(stream);
    if (existing && relay && !existing.publisher) {
      existing.attach(this.#relayed(mixer, stream, relay));
      return this.#describe(request.uri, mixer);
    }
    if (existing)
      throw conflict(`remoteStreamName: ${stream} is already an input of ${request.uri}`, 'remoteStreamName');
    if (mixer.inputs.length >= MAX_MIXER_INPUTS)
      throw conflict(
        `remoteStreamName: ${request.uri} has its ${MAX_MIXER_INPUTS} inputs, the most a mixer takes`,
        'remoteStreamName',
      );
    if (this.#dependsOn(stream, mixer))
      throw invalid(
        'remoteStreamName',
        `${stream} is made from this mixer's own output (${mixer.output.name}): a mixer cannot take it`,
      );
    const source = relay ? this.#relayed(mixer, stream, relay) : this.#publishing(stream);
    if (!source && !request.waitForStream)
      throw notFound(`remoteStreamName: stream ${stream} is not publishing`, 'remoteStreamName');
    mixer.add(stream, source, request.slot, request.label);
    this.safeEmit('event', { type: 'mixer.input_added', mixer: request.uri, stream: mixer.output.name, input: stream });
    return this.#describe(request.uri, mixer);
  }

  remove(uri: string, stream: string): MixerInfo {
    const mixer = this.#get(uri);
    if (!mixer.remove(stream))
      throw notFound(`remoteStreamName: ${stream} is not an input of ${uri}`, 'remoteStreamName');
    this.safeEmit('event', { type: 'mixer.input_removed', mixer: uri, stream: mixer.output.name, input: stream });
    return this.#describe(uri, mixer);
  }

  setLayout(request: MixerLayoutRequest): MixerInfo {
    const mixer = this.#get(request.uri);
    mixer.setLayout({ kind: request.layout, pip: request.pip });
    return this.#describe(request.uri, mixer);
  }

  setLabel(request: MixerLabelRequest): MixerInfo {
    const mixer = this.#get(request.uri);
    const input = mixer.input(request.remoteStreamName);
    if (!input)
      throw notFound(
        `remoteStreamName: ${request.remoteStreamName} is not an input of ${request.uri}`,
        'remoteStreamName',
      );
    input.label = request.label;
    return this.#describe(request.uri, mixer);
  }

  setAudioVideo(request: MixerAudioVideo): MixerInfo {
    const mixer = this.#get(request.uri);
    const input = mixer.input(request.remoteStreamName);
    if (!input)
      throw notFound(
        `remoteStreamName: ${request.remoteStreamName} is not an input of ${request.uri}`,
        'remoteStreamName',
      );
    if (request.audioMuted !== undefined) input.sound.muted = request.audioMuted;
    if (request.volume !== undefined) input.sound.volume = request.volume;
    return this.#describe(request.uri, mixer);
  }

  /** Ends the mixer `uri`; with `createdAt` (as `findAll` gives it), only if it is the mixer started then. */
  async terminate(uri: string, createdAt?: string): Promise<void> {
    const mixer = this.#get(uri);
    if (createdAt !== undefined && new Date(mixer.createdAt).toISOString() !== createdAt) {
      throw notFound(`uri: ${uri} was started again since ${createdAt}`, 'uri');
    }
    await mixer.close('terminated');
  }

  findAll(): MixerInfo[] {
    return [...this.#mixers.entries()].map(([uri, mixer]) => this.#describe(uri, mixer));
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.#mixers.values()].map((mixer) => mixer.close(reason)));
  }

  #get(uri: string): Mixer {
    const mixer = this.#mixers.get(uri);
    if (!mixer || mixer.closed) throw notFound(`uri: no mixer ${uri}`, 'uri');
    return mixer;
  }

  /** Sends the media of `stream`, publishing here, to a mixer in another worker thread; false when it does not publish here. */
  relay(stream: string, port: MessagePort): boolean {
    const publisher = this.#publishing(stream);
    if (!publisher) {
      port.close();
      return false;
    }
    relayStream(publisher, port);
    return true;
  }

  /** A relayed source of `stream` for `mixer`: when its publisher ends, the input shows its placeholder. */
  #relayed(mixer: Mixer, stream: string, port: MessagePort): RelayedSource {
    const source: RelayedSource = new RelayedSource(port, () => {
      const input = mixer.input(stream);
      if (input?.publisher === source) void input.detach();
    });
    return source;
  }

  #publishing(stream: string): Publisher | undefined {
    const publisher = this.registry.get(stream);
    return publisher && !publisher.isClosed ? publisher : undefined;
  }

  /** Whether `stream` is `mixer`'s output, or made by mixers from it. */
  #dependsOn(stream: string, mixer: Mixer, seen = new Set<string>()): boolean {
    if (stream === mixer.output.name) return true;
    if (seen.has(stream)) return false;
    seen.add(stream);
    const making = [...this.#mixers.values()].find((m) => m.output.name === stream);
    return making !== undefined && making.inputs.some((input) => this.#dependsOn(input.stream, mixer, seen));
  }

  #describe(uri: string, mixer: Mixer): MixerInfo {
    const { spec } = mixer;
    return {
      uri,
      localStreamName: spec.name,
      layout: mixer.layout.kind,
      width: spec.size.width,
      height: spec.size.height,
      fps: spec.frameRate,
      background: spec.background,
      hasVideo: mixer.spec.hasVideo,
      hasAudio: mixer.output.hasAudio,
      createdAt: new Date(mixer.createdAt).toISOString(),
      frames: mixer.pictures,
      inputs: mixer.inputs.map((input, slot) => ({
        streamName: input.stream,
        slot,
        publishing: input.publisher !== undefined,
        audioMuted: input.sound.muted,
        volume: input.sound.volume,
        label: input.label,
      })),
    };
  }
}
