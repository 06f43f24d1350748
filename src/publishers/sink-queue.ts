import { RTP_HEADER_SIZE } from '../media/rtp.js';
import type { AudioPacket, MediaSink, VideoFrame } from '../media/sinks.js';

/**
 * What one queue holds at most: a whole start cache replayed at once (300 frames and the audio of
 * their 10 s, about 800 items) fits, with room for the live media that comes meanwhile.
 */
export const SINK_QUEUE_ITEMS = 1024;
/** Items one queue delivers before the next queue's turn. */
const SLICE_ITEMS = 16;

/** What a queue discarded: it held more than SINK_QUEUE_ITEMS (its sink did not keep up). */
export interface SinkQueueDiscards {
  /** Video frames discarded, those skipped until the next keyframe included. */
  frames: number;
  audioPackets: number;
  /** Times it overflowed. */
  overflows: number;
}

/**
 * Queues that hold items, in the order they are served (a queue served in part goes to the back),
 * one list per thread, drained on the thread's next turn (`setImmediate`, after the I/O that is
 * due). Two lists take turns, so a round allocates nothing.
 */
let waiting: SinkQueue[] = [];
let serving: SinkQueue[] = [];
let scheduled = false;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(drainRound);
}

/** One round: each waiting queue delivers a slice; what is left waits for the next turn, after I/O. */
function drainRound(): void {
  scheduled = false;
  const round = waiting;
  waiting = serving;
  serving = round;
  for (let i = 0; i < serving.length; i++) serving[i]!.serve(SLICE_ITEMS);
  serving.length = 0;
  if (waiting.length > 0) schedule();
}

/**
 * A sink's own bounded queue between the publisher and the sink, a ring of references: the
 * publisher's fan-out only stores a reference in each, and the
 * sinks' work runs afterwards, a slice of each queue in turn. So one push's burst (the start cache
 * replayed to a push that reconnects) or slow work delays a neighbour's frame by one slice at
 * most, not by all of it. A queue that fills up (its sink cannot keep up with the stream) discards
 * what it holds and its video up to the next keyframe, and counts what it discarded.
 *
 * The ring is allocated once: queueing a packet or a frame allocates nothing.
 */
export class SinkQueue implements MediaSink {
  readonly discarded: SinkQueueDiscards = { frames: 0, audioPackets: 0, overflows: 0 };
  /** What it delivered, as the RTP it came in: packets, and their bytes, headers included. */
  packets = 0;
  bytes = 0;
  readonly #items = new Array<AudioPacket | VideoFrame | undefined>(SINK_QUEUE_ITEMS);
  /** 1 where the item is a video frame. */
  readonly #isFrame = new Uint8Array(SINK_QUEUE_ITEMS);
  #head = 0;
  #size = 0;
  /** After an overflow, video waits for a keyframe (the frames after a gap do not decode). */
  #awaitingKeyframe = false;
  #failed = false;
  /** In the list of queues waiting to be served. */
  #waiting = false;

  constructor(
    private readonly sink: MediaSink,
    /** The sink threw (told once; it goes on being fed). */
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Items waiting to be delivered. */
  get size(): number {
    return this.#size;
  }

  audio(packet: AudioPacket): void {
    this.#makeRoom();
    this.#add(packet, 0);
  }

  frame(frame: VideoFrame): void {
    this.#makeRoom();
    if (this.#awaitingKeyframe) {
      if (!frame.key) {
        this.discarded.frames++;
        return;
      }
      this.#awaitingKeyframe = false;
    }
    this.#add(frame, 1);
  }

  /** Forgets what is waiting: the sink is no longer fed (a round that finds it empty passes it by). */
  clear(): void {
    this.#items.fill(undefined);
    this.#head = 0;
    this.#size = 0;
  }

  /** Its turn in a round: delivers up to `count` items, then waits for the next round if some are left. */
  serve(count: number): void {
    this.#waiting = false;
    this.#deliver(count);
    if (this.#size > 0) this.#wait();
  }

  /** Delivers up to `count` items to the sink, oldest first. */
  #deliver(count: number): void {
    const items = this.#items;
    for (let n = 0; n < count && this.#size > 0; n++) {
      const at = this.#head;
      const item = items[at]!;
      items[at] = undefined;
      this.#head = (at + 1) % SINK_QUEUE_ITEMS;
      this.#size--;
      try {
        if (this.#isFrame[at]) {
          const frame = item as VideoFrame;
          this.packets += frame.packets;
          this.bytes += RTP_HEADER_SIZE * frame.packets + frame.bytes;
          this.sink.frame(frame);
        } else {
          const packet = item as AudioPacket;
          this.packets++;
          this.bytes += RTP_HEADER_SIZE + packet.payload.length;
          this.sink.audio(packet);
        }
      } catch (error) {
        if (!this.#failed) this.onError(error);
        this.#failed = true;
      }
    }
  }

  #wait(): void {
    if (this.#waiting) return;
    this.#waiting = true;
    waiting.push(this);
    schedule();
  }

  #add(item: AudioPacket | VideoFrame, isFrame: 0 | 1): void {
    const at = (this.#head + this.#size) % SINK_QUEUE_ITEMS;
    this.#items[at] = item;
    this.#isFrame[at] = isFrame;
    this.#size++;
    this.#wait();
  }

  /** Full: everything held goes, and video resumes at the next keyframe (the item coming, if it is one). */
  #makeRoom(): void {
    if (this.#size < SINK_QUEUE_ITEMS) return;
    for (let i = 0; i < this.#size; i++) {
      if (this.#isFrame[(this.#head + i) % SINK_QUEUE_ITEMS]) this.discarded.frames++;
      else this.discarded.audioPackets++;
    }
    this.discarded.overflows++;
    this.#awaitingKeyframe = true;
    this.clear();
  }
}
