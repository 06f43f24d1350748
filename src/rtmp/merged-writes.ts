import type { Writable } from 'node:stream';

/**
 * How long media written to an RTMP connection may wait to go out with what comes after it (ms).
 * A push writes about 77 messages a second (30 pictures, 47 AAC frames); handed to the kernel one
 * tick at a time, each is a `writev` of its own, and on a loopback or LAN destination the kernel
 * delivers each in the writer's thread. Merged over 40 ms they are about 25, for a delay an RTMP
 * destination (which buffers seconds) does not notice. SRS merges writes the same way (`mw_latency`).
 */
const MERGED_WRITE_MS = 40;

/** A writer that holds media back and hands it to its socket when told. */
interface MergedWriter {
  flush(): void;
}

/**
 * Chunks written to one socket and not yet handed to it. Media waits for the thread's next merged
 * write; anything else goes at the end of its tick, with the media held before it. Nothing is
 * handed over once `open()` says the socket is gone.
 */
export class HeldWrites implements MergedWriter {
  #chunks: Buffer[] = [];
  #bytes = 0;
  /** A flush is due at the end of this tick (a command or control message is held). */
  #thisTick = false;

  constructor(
    private readonly socket: Writable,
    private readonly open: () => boolean,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  /** Holds `chunks` (media until the thread's next merged write); returns their bytes. */
  hold(chunks: Buffer[], media: boolean): number {
    let bytes = 0;
    for (const chunk of chunks) {
      bytes += chunk.length;
      this.#chunks.push(chunk);
    }
    this.#bytes += bytes;
    if (media) flushLater(this);
    else if (!this.#thisTick) {
      this.#thisTick = true;
      process.nextTick(() => {
        this.#thisTick = false;
        this.flush();
      });
    }
    return bytes;
  }

  /** Hands what is held to the socket, in one system call. */
  flush(): void {
    if (!this.open() || !this.#chunks.length) return;
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#bytes = 0;
    this.socket.cork();
    for (const chunk of chunks) this.socket.write(chunk);
    this.socket.uncork();
  }
}

/** Writers with something held, on this thread; flushed together, then forgotten. */
const holding = new Set<MergedWriter>();
let timer: NodeJS.Timeout | undefined;

/** Has `writer` flushed within MERGED_WRITE_MS, with every other writer holding media on this thread. */
function flushLater(writer: MergedWriter): void {
  holding.add(writer);
  timer ??= setTimeout(flushAll, MERGED_WRITE_MS);
}

function flushAll(): void {
  timer = undefined;
  const writers = [...holding];
  holding.clear();
  for (const writer of writers) writer.flush();
}
