import type { Logger } from 'pino';
import { GatewayError } from '../core/errors.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import type { MediaPlane } from '../plane/plane.js';
import { trackSize } from '../core/tracked.js';
import { callerOf, type Caller } from '../mixers/callers.js';
import {
  mixerInputSchema,
  mixerName,
  mixerStartupSchema,
  type MixerInfo,
  type MixerStartup,
} from '../mixers/requests.js';

/** What the automatic mixers ask of the plane: the mixers' own calls. */
type MixerCalls = Pick<
  MediaPlane,
  'mixerStartup' | 'mixerAdd' | 'mixerRemove' | 'mixerLayout' | 'mixerFind' | 'mixerTerminate'
>;

/** A room with a mixer: its work, done in order, and what it is waiting for. */
interface Room {
  work: Promise<void>;
  /** Whether this gateway started its mixer (and so ends it once it has been empty for a while). */
  started: boolean;
  /** The timer that ends the mixer once it has been empty for `idleMs`. */
  idle?: NodeJS.Timeout;
  /** The caller whose screen is shown large. */
  desktop?: string;
}

const isCode = (error: unknown, code: string): boolean => error instanceof GatewayError && error.code === code;

/**
 * Web Call Server's rooms (`mixer_auto_start`): a stream named `user1#room1` that publishes joins
 * the mixer `mixer://room1`, which is started for it when there is none (publishing the stream
 * `room1`, pushed and recorded as any), labelled `user1`; `user1#room1#desktop` is a screen, placed
 * first and large (the `desktop` layout, the grid again once it leaves). A caller that leaves
 * leaves the mixer; a mixer started here ends once it has had no caller for `idleMs`. Each
 * room's changes are made one at a time, in the order they happened.
 */
export class Rooms {
  readonly #rooms = new Map<string, Room>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: Rooms): void {
    trackSize('rooms', owner, (self) => self.#rooms.size);
  }

  constructor(
    private readonly plane: MixerCalls,
    private readonly idleMs: number,
    private readonly log: Logger,
    /** How a room's mixer is started: by the plane (placed by load), or on this node (a cluster's: its callers are placed there). */
    private readonly startMixer: (startup: MixerStartup) => Promise<MixerInfo> = (startup) =>
      plane.mixerStartup(startup),
  ) {
    Rooms.#trackSizes(this);
  }

  /** Follows this node's publishers, and the mixers that end. */
  follow(event: LifecycleEvent): void {
    if (event.type === 'mixer.ended') {
      const name = mixerName(event.mixer);
      clearTimeout(this.#rooms.get(name)?.idle);
      this.#rooms.delete(name);
      return;
    }
    if (
      event.type !== 'publisher.published' &&
      event.type !== 'publisher.returned' &&
      event.type !== 'publisher.ended' &&
      event.type !== 'publisher.lost'
    )
      return;
    const caller = callerOf(event.stream);
    if (!caller) return;
    const joins = event.type === 'publisher.published' || event.type === 'publisher.returned';
    this.#inTurn(caller.room, (room) =>
      joins ? this.#join(room, caller, event.stream) : this.#leave(room, caller, event.stream),
    );
  }

  close(): void {
    for (const room of this.#rooms.values()) clearTimeout(room.idle);
    this.#rooms.clear();
  }

  /** Runs `work` for the room after what it has to do already. */
  #inTurn(name: string, work: (room: Room) => Promise<void>): void {
    const room = this.#rooms.get(name) ?? { work: Promise.resolve(), started: false };
    this.#rooms.set(name, room);
    room.work = room.work
      .then(() => work(room))
      .catch((error: Error) =>
        this.log.warn({ room: name, reason: error.message }, 'an automatic mixer could not follow its callers'),
      );
  }

  async #join(room: Room, caller: Caller, stream: string): Promise<void> {
    const uri = `mixer://${caller.room}`;
    clearTimeout(room.idle);
    room.idle = undefined;
    try {
      await this.startMixer(mixerStartupSchema.parse({ uri }));
      room.started = true;
      this.log.info({ mixer: uri, caller: stream }, 'mixer started for a room');
    } catch (error) {
      if (!isCode(error, 'conflict')) {
        if (!room.started) this.#rooms.delete(caller.room);
        throw error;
      }
    }
    const input = mixerInputSchema.parse({
      uri,
      remoteStreamName: stream,
      label: caller.user,
      ...(caller.desktop ? { slot: 0 } : {}),
    });
    try {
      await this.plane.mixerAdd(input);
    } catch (error) {
      if (!isCode(error, 'conflict')) throw error; // an input already (its publisher came back)
    }
    if (caller.desktop) {
      room.desktop = stream;
      await this.plane.mixerLayout({ uri, layout: 'desktop' });
    }
  }

  async #leave(room: Room, caller: Caller, stream: string): Promise<void> {
    const uri = `mixer://${caller.room}`;
    let left;
    try {
      left = await this.plane.mixerRemove({ uri, remoteStreamName: stream });
    } catch (error) {
      if (isCode(error, 'not_found')) return; // not an input, or no mixer
      throw error;
    }
    if (room.desktop === stream) {
      room.desktop = undefined;
      await this.plane.mixerLayout({ uri, layout: 'grid' });
    }
    if (left.inputs.length > 0) return;
    if (!room.started) {
      // Not started here (over REST, or by another node's callers): not this node's to end, nor to remember.
      if (this.#rooms.get(caller.room) === room) this.#rooms.delete(caller.room);
      return;
    }
    clearTimeout(room.idle);
    room.idle = setTimeout(
      () => this.#inTurn(caller.room, (current) => this.#endIfEmpty(caller.room, current, left.createdAt)),
      this.idleMs,
    );
    room.idle.unref();
  }

  /** Ends the room's mixer (the one started at `createdAt`) if it still has no caller, and forgets the room. */
  async #endIfEmpty(name: string, room: Room, createdAt: string): Promise<void> {
    const uri = `mixer://${name}`;
    const mixer = (await this.plane.mixerFind()).find((m) => m.uri === uri && m.createdAt === createdAt);
    if (mixer && mixer.inputs.length > 0) return;
    // Forgotten here too: the mixer may run at another node, whose end this node does not hear of.
    if (this.#rooms.get(name) === room) this.#rooms.delete(name);
    if (!mixer) return;
    this.log.info({ mixer: uri, idleMs: this.idleMs }, 'a room had no caller: its mixer ends');
    await this.plane.mixerTerminate(uri, createdAt);
  }
}
