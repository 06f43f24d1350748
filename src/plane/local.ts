import type { MessagePort } from 'node:worker_threads';
import type { FindFilter, SoundRequest, StartupRequest } from '../pushes/requests.js';
import type { Push } from '../pushes/push.js';
import { describeStream, type StreamJson } from '../publishers/description.js';
import { notFound } from '../core/errors.js';
import { monotonicMs } from '../core/clock.js';
import { parseChannelCaption, placeCaption, type CaptionResult } from '../captions/request.js';
import { CaptionFlood } from '../captions/flood.js';
import type { Publisher } from '../publishers/publisher.js';
import type { MediaCore } from './core.js';
import { followLifecycle, type LifecycleEvent } from './lifecycle.js';
import type { MediaPlane, PlaneStatus, Negotiated, PublishHandlers, ThreadLoad } from './plane.js';
import { followPushes, type PushChange } from '../pushes/changes.js';
import type { PushInfo, Sheddable } from '../pushes/info.js';
import type {
  MixerAudioVideo,
  MixerInfo,
  MixerInputRequest,
  MixerLabelRequest,
  MixerLayoutRequest,
  MixerStartup,
} from '../mixers/requests.js';

const json = (t: Push): PushInfo => t.toJSON();

/** Streams run in this thread: the plane of a gateway with `workers: 0`, and of each worker. */
export class LocalPlane implements MediaPlane {
  #closing: Promise<void> | undefined;
  /** Captions on the publishers' data channels, per publisher. */
  readonly #channelFlood = new CaptionFlood();

  constructor(
    readonly core: MediaCore,
    /** The thread's name in its load: the worker's index, or `main`. */
    private readonly thread = 'main',
  ) {}

  async publish(
    name: string,
    offer: string,
    handlers: PublishHandlers = {},
    clientAddress?: string,
  ): Promise<Negotiated> {
    const publisher = await this.core.publishers.publish(name, offer, clientAddress);
    if (handlers.publishing) publisher.on('publishing', () => handlers.publishing!());
    if (handlers.closed) publisher.on('closed', (reason, lost) => handlers.closed!(reason, lost));
    publisher.on('message', (channel, text) => {
      if (channel === 'captions') void this.#channelCaption(publisher, text);
    });
    return { id: publisher.id, answer: publisher.session.answer };
  }

  /** A caption on the publisher's data channel: in its pushes as one sent over REST would be; refused ones counted. */
  async #channelCaption(publisher: Publisher, message: string): Promise<void> {
    if (this.core.publishers.get(publisher.name) !== publisher) return; // ended meanwhile
    try {
      this.#channelFlood.take(publisher.id);
      const { text, final, at } = parseChannelCaption(message);
      await this.caption(publisher.name, text, final, at);
    } catch (error) {
      publisher.messageRefused('captions', (error as Error).message);
    }
  }

  async unpublish(name: string, id: string | undefined, reason: string, lost = false): Promise<boolean> {
    const publisher = this.core.publishers.get(name);
    if (publisher && (id === undefined || publisher.id === id)) {
      await publisher.close(reason, lost);
      return true;
    }
    if (id === undefined || lost) return false;
    // Its connection closed first (a client that closes its peer connection, then sends the WHIP
    // DELETE): it was taken for lost, and its pushes wait for it in standby. The stop ends it after all.
    const gone = this.core.pushes.awaiting(name).find((t) => t.publisher.id === id)?.publisher;
    if (!gone) return false;
    this.core.publishers.endLost(gone, reason);
    return true;
  }

  async streams(name?: string): Promise<StreamJson[]> {
    const { publishers, pushes } = this.core;
    const chosen = name === undefined ? publishers.all() : [publishers.get(name)].filter((p) => p !== undefined);
    return chosen.map((p) =>
      describeStream(
        p,
        pushes.find({ streamName: p.name }).map((t) => t.mediaSessionId),
      ),
    );
  }

  async snapshot(name: string, width?: number): Promise<Buffer> {
    const publisher = this.core.publishers.get(name);
    if (!publisher || publisher.state !== 'publishing') throw notFound(`stream ${name} is not publishing`);
    const keyframe = publisher.keyframe;
    if (!keyframe)
      throw notFound(`stream ${name} has no keyframe yet${publisher.videoCodec ? '' : ': it has no video'}`);
    return this.core.pictures.jpeg(keyframe, width);
  }

  async caption(name: string, text: string, final = true, at?: number): Promise<CaptionResult> {
    const publisher = this.core.publishers.get(name);
    const originMs = publisher?.state === 'publishing' ? publisher.mediaOriginMs : undefined;
    if (originMs === undefined) throw notFound(`stream ${name} is not publishing`);
    const placed = placeCaption(originMs, monotonicMs(), at);
    const pushes = this.core.pushes.find({ streamName: name }).filter((push) => push.request.captions);
    for (const push of pushes) push.writer.caption({ text, final, atMs: placed.atMs });
    this.core.viewers.caption(name, { text, final }, placed.atMs - monotonicMs());
    return { pushes: pushes.length, at: placed.at };
  }

  async view(name: string, offer: string, client: string): Promise<Negotiated> {
    return this.core.viewers.view(name, offer, client);
  }

  async endView(name: string, id: string): Promise<boolean> {
    return this.core.viewers.end(name, id, 'WHEP session deleted');
  }

  async startup(request: StartupRequest, id?: string): Promise<PushInfo> {
    return json(await this.core.pushes.startup(request, id));
  }

  async find(filter: FindFilter): Promise<PushInfo[]> {
    return this.core.pushes.find(filter).map(json);
  }

  async terminate(mediaSessionId: string): Promise<void> {
    await this.core.pushes.terminate(mediaSessionId);
  }

  async sheddable(): Promise<Sheddable[]> {
    return this.core.pushes.all().map((push) => push.sheddable());
  }

  async shed(mediaSessionId: string, reason: string): Promise<boolean> {
    return this.#push(mediaSessionId)?.shed(reason) ?? false;
  }

  async unshed(mediaSessionId: string): Promise<boolean> {
    const push = this.#push(mediaSessionId);
    if (!push?.isShed) return false;
    push.unshed();
    return true;
  }

  #push(mediaSessionId: string): Push | undefined {
    return this.core.pushes.all().find((push) => push.mediaSessionId === mediaSessionId);
  }

  async setMuted(mediaSessionId: string, muted: boolean): Promise<void> {
    this.core.pushes.setMuted(mediaSessionId, muted);
  }

  async soundOn(mediaSessionId: string, request: SoundRequest): Promise<void> {
    await this.core.pushes.soundOn(mediaSessionId, request);
  }

  async soundOff(mediaSessionId: string): Promise<void> {
    await this.core.pushes.soundOff(mediaSessionId);
  }

  async mixerStartup(request: MixerStartup): Promise<MixerInfo> {
    return this.core.mixers.startup(request);
  }

  async mixerAdd(request: MixerInputRequest, relay?: MessagePort): Promise<MixerInfo> {
    return this.core.mixers.add(request, relay);
  }

  async relayStream(stream: string, port: MessagePort): Promise<boolean> {
    return this.core.mixers.relay(stream, port);
  }

  async mixerRemove(request: { uri: string; remoteStreamName: string }): Promise<MixerInfo> {
    return this.core.mixers.remove(request.uri, request.remoteStreamName);
  }

  async mixerLayout(request: MixerLayoutRequest): Promise<MixerInfo> {
    return this.core.mixers.setLayout(request);
  }

  async mixerLabel(request: MixerLabelRequest): Promise<MixerInfo> {
    return this.core.mixers.setLabel(request);
  }

  async mixerAudioVideo(request: MixerAudioVideo): Promise<MixerInfo> {
    return this.core.mixers.setAudioVideo(request);
  }

  async mixerFind(): Promise<MixerInfo[]> {
    return this.core.mixers.findAll();
  }

  async mixerTerminate(uri: string, createdAt?: string): Promise<void> {
    await this.core.mixers.terminate(uri, createdAt);
  }

  watch(listener: (change: PushChange) => void): () => void {
    return followPushes(this.core.pushes, listener);
  }

  events(listener: (event: LifecycleEvent) => void): () => void {
    return followLifecycle(this.core.publishers, this.core.pushes, this.core.viewers, this.core.mixers, listener);
  }

  /** This thread's load and counts. */
  get load(): ThreadLoad {
    const { load, publishers } = this.core;
    return { thread: this.thread, ...load.last, publishers: publishers.all().length, overload: load.overload };
  }

  status(): PlaneStatus {
    const pushes: PlaneStatus['pushes'] = {};
    for (const t of this.core.pushes.all()) pushes[t.state] = (pushes[t.state] ?? 0) + 1;
    const thread = this.load;
    return { publishers: thread.publishers, pushes, overloaded: thread.overload !== undefined, threads: [thread] };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.core.load.close();
      await this.core.pushes.closeAll();
      await this.core.mixers.closeAll('gateway shutting down');
      await this.core.viewers.closeAll('gateway shutting down');
      await this.core.publishers.closeAll('gateway shutting down');
      await this.core.engine.close?.();
    })();
    return this.#closing;
  }

  killChildren(): void {
    this.core.ffmpeg.killAll();
  }
}
