import { MessageChannel } from 'node:worker_threads';
import { invalid } from '../core/errors.js';
import { mixerStream } from '../mixers/requests.js';
import type { ArgsOf, ResultOf } from './methods.js';
import type { HeldMixer } from './thread.js';
import type { ThreadRouter } from './thread-router.js';

/**
 * The mixers of the worker threads as one graph. A mixer runs in one thread, which holds it with
 * its inputs (`HeldMixer`), and publishes its stream there; an input publishing in another thread
 * comes to it over a relay: a port between the two threads, the media sent by the stream's
 * (`relayStream`). A stream made from the mixer's own output, through mixers of any thread, is
 * refused as its input.
 */
export class MixerGraph {
  constructor(private readonly router: ThreadRouter) {}

  /**
   * A mixer is placed as a publish of its stream: where a stream of that name is (which refuses
   * it), else in the thread with the fewest mixers. Its stream is held there like a publisher's,
   * so that a publish of the same name reaches that thread, and is refused.
   */
  async startup(request: ArgsOf<'mixerStartup'>[0]): Promise<ResultOf<'mixerStartup'>> {
    const stream = mixerStream(request);
    const thread = this.router.holder('mixer', request.uri) ?? this.router.threadFor(stream, true);
    const started = await this.router.hold(stream, thread, () => thread.call('mixerStartup', request));
    thread.mixerStarted(request.uri, stream);
    return started;
  }

  /** Adds an input to its mixer, over a relay when it publishes in another thread. */
  async add(request: ArgsOf<'mixerAdd'>[0]): Promise<ResultOf<'mixerAdd'>> {
    const own = this.#mixer(request.uri)?.stream;
    if (own !== undefined && this.#madeFrom(request.remoteStreamName, own)) {
      throw invalid(
        'remoteStreamName',
        `${request.remoteStreamName} is made from this mixer's own output (${own}): a mixer cannot take it`,
      );
    }
    const added = await this.#relayInput(request);
    this.#mixer(request.uri)?.inputs.add(request.remoteStreamName);
    return added;
  }

  /** `stream` is no longer an input of the mixer `uri`. */
  removed(uri: string, stream: string): void {
    this.#mixer(uri)?.inputs.delete(stream);
  }

  /** The mixer `uri` was ended: its thread forgets it, and its inputs. */
  ended(uri: string): void {
    this.router.holder('mixer', uri)?.mixerEnded(uri);
  }

  /**
   * `stream` publishes: the mixers of other threads that wait for it get its media back. (A mixer
   * in the stream's own thread hears of it there.)
   */
  published(stream: string): void {
    const holder = this.router.holder('stream', stream);
    for (const thread of this.router.alive()) {
      if (thread === holder) continue;
      for (const [uri, mixer] of thread.mixers()) {
        if (mixer.inputs.has(stream)) void this.#relayInput({ uri, remoteStreamName: stream }).catch(() => undefined);
      }
    }
  }

  /** The mixer `uri`, as the thread running it holds it. */
  #mixer(uri: string): HeldMixer | undefined {
    return this.router.holder('mixer', uri)?.mixer(uri);
  }

  /** Whether `stream` is `output`, or made by mixers (of any thread) from it. */
  #madeFrom(stream: string, output: string, seen = new Set<string>()): boolean {
    if (stream === output) return true;
    if (seen.has(stream)) return false;
    seen.add(stream);
    return this.router
      .alive()
      .some((thread) =>
        [...thread.mixers()].some(
          ([, mixer]) =>
            mixer.stream === stream && [...mixer.inputs].some((input) => this.#madeFrom(input, output, seen)),
        ),
      );
  }

  /** Adds `request`'s stream to its mixer, over a relay when the stream publishes in another thread. */
  async #relayInput(request: ArgsOf<'mixerAdd'>[0]): Promise<ResultOf<'mixerAdd'>> {
    const mixerThread = this.router.holder('mixer', request.uri) ?? this.router.any();
    const streamThread = this.router.holder('stream', request.remoteStreamName);
    if (!streamThread || streamThread === mixerThread) return mixerThread.call('mixerAdd', request);
    const { port1, port2 } = new MessageChannel();
    if (!(await streamThread.call('relayStream', request.remoteStreamName, port1))) {
      port2.close();
      return mixerThread.call('mixerAdd', request);
    }
    try {
      return await mixerThread.call('mixerAdd', request, port2);
    } catch (error) {
      port2.close();
      throw error;
    }
  }
}
