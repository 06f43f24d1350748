import { trackSize } from '../tracked.js';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** Each pair's first bytes, from the gateway's end: how the listening side knows its own connection from another's. */
const TOKEN_BYTES = 16;
/** A connection that has not said its token by then is closed. */
const TOKEN_TIMEOUT_MS = 5000;

/** A connected pair of Unix stream sockets (`OutputSockets.pair`). */
export interface OutputSocketPair {
  /** Read by the gateway, into its one buffer. */
  ours: Socket;
  /** For a child's standard output: the gateway closes its own copy once the child has it. */
  theirs: Socket;
}

/**
 * Connected pairs of Unix stream sockets, for the standard output of an ffmpeg that writes raw
 * pictures all the time (a mixer's input decoders): the gateway reads its end into one buffer of
 * its own, again and again (`onread`), where a pipe's stream allocates 64 KB for each read. At the
 * 40 MB/s two 720p inputs make, those allocations were external memory enough for V8 to collect the
 * whole heap about every 0.7 s.
 *
 * The pairs are made over one listening socket in the abstract namespace (no file): the gateway's
 * end of each connects to it and first sends a random token, so a connection that another process
 * makes is never taken for one of its own.
 */
export class OutputSockets {
  #listening: Promise<string> | undefined;
  #server: Server | undefined;
  readonly #waiting = new Map<string, (theirs: Socket) => void>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: OutputSockets): void {
    trackSize('output_sockets_waiting', owner, (self) => self.#waiting.size);
  }

  constructor() {
    OutputSockets.#trackSizes(this);
  }

  /**
   * A connected pair: what is written to `theirs` is read into `buffer` and given to `onData` (a
   * view of `buffer`, valid until it returns); `onError` hears of `onData` throwing.
   */
  async pair(
    buffer: Buffer,
    onData: (data: Buffer) => void,
    onError: (error: unknown) => void,
  ): Promise<OutputSocketPair> {
    const name = await (this.#listening ??= this.#listen());
    const token = randomBytes(TOKEN_BYTES);
    const key = token.toString('hex');
    const accepted = new Promise<Socket>((resolve) => this.#waiting.set(key, resolve));
    const callback = (bytes: number): boolean => {
      try {
        onData(buffer.subarray(0, bytes));
      } catch (error) {
        onError(error);
      }
      return true;
    };
    const ours = connect({ path: name, onread: { buffer, callback } });
    try {
      await new Promise<void>((resolve, reject) => {
        ours.once('error', reject);
        ours.once('connect', () => {
          ours.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      this.#waiting.delete(key);
      ours.destroy();
      throw error;
    }
    // Its errors (the child gone, at worst) end it; the reader hears of the end from the child's exit.
    ours.on('error', () => {});
    ours.write(token);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the output socket pair was not made in time')), TOKEN_TIMEOUT_MS);
    });
    try {
      return { ours, theirs: await Promise.race([accepted, late]) };
    } catch (error) {
      this.#waiting.delete(key);
      ours.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops listening; pairs already made go on. */
  close(): void {
    this.#server?.close();
    this.#server = undefined;
    this.#listening = undefined;
  }

  #listen(): Promise<string> {
    const name = `\0webrtc-rtmp-gateway-${process.pid}-${randomBytes(8).toString('hex')}`;
    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(name, () => {
        server.off('error', reject);
        server.on('error', () => {}); // a listening server's errors are of its connections, handled each
        server.unref();
        resolve(name);
      });
    });
  }

  /** A connection to the listening socket: one of the gateway's pairs once its token is read, else closed. */
  #accept(socket: Socket): void {
    socket.on('error', () => {});
    socket.setTimeout(TOKEN_TIMEOUT_MS, () => socket.destroy());
    let read = Buffer.alloc(0);
    const onData = (data: Buffer): void => {
      read = Buffer.concat([read, data]);
      if (read.length < TOKEN_BYTES) return;
      socket.off('data', onData);
      socket.pause();
      socket.setTimeout(0);
      const key = read.subarray(0, TOKEN_BYTES).toString('hex');
      const resolve = this.#waiting.get(key);
      if (!resolve || read.length > TOKEN_BYTES) {
        socket.destroy();
        return;
      }
      this.#waiting.delete(key);
      resolve(socket);
    };
    socket.on('data', onData);
  }
}
