import { monotonicMs } from '../core/clock.js';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { TypedEmitter, type ListenerErrorHandler } from '../core/events.js';
import { decodeAmf0, EcmaArray, encodeAmf0, type Amf0Value } from '../media/amf0.js';
import type { FourCc } from '../media/flv.js';
import { ChunkReader, MessageType, messageChunks, type RtmpMessage } from './chunks.js';
import { RtmpAuthenticator, type RtmpCredentials } from './auth.js';
import { ConnectRefused, RtmpError } from './errors.js';
import { HeldWrites } from './merged-writes.js';
import { openSocket } from './socket.js';

export type RtmpStep = 'connected' | 'handshake' | 'application' | 'published';

export interface RtmpPublishOptions {
  protocol: 'rtmp' | 'rtmps';
  /** The address to connect to, resolved by the caller for this attempt. */
  address: string;
  port: number;
  /** The destination's host name: TLS server name (SNI) and the name its certificate must carry. */
  host: string;
  app: string;
  tcUrl: string;
  /** The name given to `publish`. Secret (a stream key): never logged. */
  streamName: string;
  /**
   * The destination URL's query without `?` (secret): added to app and tcUrl in connect, where
   * Wowza and Web Call Server look for it, and to the published name, where nginx-rtmp's
   * on_publish and Wowza's publish handlers do.
   */
  query?: string;
  /** false: the query goes to connect alone (YouTube's backup ingest, as OBS sends it). */
  queryInName?: boolean;
  /** For servers that ask for Adobe or Limelight authentication. */
  credentials?: RtmpCredentials;
  flashVer: string;
  /** Local address to connect from. */
  localAddress?: string;
  /** TLS context for RTMPS, holding the trusted certificate authorities; Node's defaults without it. */
  secureContext?: SecureContext;
  /** Hears of a listener of the publisher's events that threw. */
  onListenerError?: ListenerErrorHandler;
  /** Connecting, handshake, connect, createStream and publish together must finish within this. */
  timeoutMs: number;
  /** The TCP (and TLS) connection alone must be made within this; `timeoutMs` when absent. */
  socketTimeoutMs?: number;
  /**
   * The Enhanced RTMP codecs it sends, announced in `connect` (`fourCcList`, `videoFourCcInfoMap`
   * saying it encodes them, `capsEx` 0: none of the extended capabilities); none for FLV's own.
   */
  videoFourCcs?: readonly FourCc[];
  /** Stop once the application accepted `connect` (a destination check): no stream is created. */
  connectOnly?: boolean;
  /** Told of each step done: the connection made, the handshake, `connect` accepted, the publish started. */
  onStep?: (step: RtmpStep) => void;
}

export type RtmpPushClientEvents = {
  /** The connection ended; with an error unless `close()` ended it. */
  closed: [error?: Error];
};

const HANDSHAKE_SIZE = 1536;
/** `videoFourCcInfoMap`'s flag for a codec the client sends (Enhanced RTMP v2). */
const CAN_ENCODE = 0x02;
const OUT_CHUNK_SIZE = 4096;
/**
 * Window after which the server is asked to acknowledge what it received. Small, so that even an
 * audio-only stream (~20 KB/s) is acknowledged every couple of seconds: acknowledgements are what
 * proves delivery (a stopped server's kernel keeps taking bytes for a long time).
 */
const ACK_WINDOW = 32 * 1024;
const CSID = { control: 2, command: 3, audio: 4, data: 5, video: 6 } as const;

/**
 * An RTMP client that publishes one stream (what FMLE, OBS and ffmpeg do): TCP or TLS, the plain
 * handshake, connect, releaseStream, FCPublish, createStream, publish; then FLV tag bodies as audio,
 * video and data messages. The gateway owns this socket, so it chooses the local address, checks
 * certificates, counts bytes and sees the server's acknowledgements.
 */
export class RtmpPushClient extends TypedEmitter<RtmpPushClientEvents> {
  /** Bytes written to the socket (after chunking). */
  bytesWritten = 0;
  /** Bytes the server acknowledged having received. */
  bytesAcknowledged = 0;
  lastAcknowledgedAt: number | undefined; // when the server last acknowledged bytes

  readonly #reader = new ChunkReader();
  readonly #pending = new Map<number, { resolve: (values: Amf0Value[]) => void; reject: (error: Error) => void }>();
  #transactions = 0;
  #streamId = 0;
  #received = 0;
  #lastAckSent = 0;
  #serverWindow = 0;
  #publishing?: { resolve: () => void; reject: (error: Error) => void };
  #closed = false;
  /** Chunks written and not yet handed to the socket (`merged-writes.ts`). */
  readonly #held: HeldWrites;
  #closedByUs = false;
  #error: Error | undefined;
  #acknowledgements = 0;

  private constructor(
    private readonly socket: Socket,
    onListenerError?: ListenerErrorHandler,
  ) {
    super(onListenerError);
    this.#held = new HeldWrites(socket, () => !this.#closed);
    socket.on('error', (error) => (this.#error ??= error));
  }

  /**
   * Connects and publishes; resolves once the server said NetStream.Publish.Start. A server that
   * asks for authentication gets it on new connections to the same address (up to two more).
   */
  static async publish(options: RtmpPublishOptions): Promise<RtmpPushClient> {
    const deadline = monotonicMs() + options.timeoutMs;
    const authenticator = new RtmpAuthenticator(options.credentials);
    let auth = '';
    for (;;) {
      try {
        return await RtmpPushClient.#attempt(options, auth, deadline - monotonicMs());
      } catch (error) {
        const next =
          error instanceof ConnectRefused ? authenticator.next(error.description ?? '', options.app) : undefined;
        if (next === undefined) throw error;
        auth = next;
      }
    }
  }

  static async #attempt(options: RtmpPublishOptions, auth: string, timeoutMs: number): Promise<RtmpPushClient> {
    if (timeoutMs <= 0)
      throw new RtmpError(`the destination did not accept the publish within ${options.timeoutMs} ms`);
    const socket = await openSocket(options, Math.min(timeoutMs, options.socketTimeoutMs ?? timeoutMs));
    options.onStep?.('connected');
    const client = new RtmpPushClient(socket, options.onListenerError);
    const timer = setTimeout(
      () => client.#abort(new RtmpError(`the destination did not accept the publish within ${options.timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await client.#handshake();
      options.onStep?.('handshake');
      await client.#startPublishing(options, auth);
      options.onStep?.(options.connectOnly ? 'application' : 'published');
      return client;
    } catch (error) {
      client.#abort(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Bytes written that the destination has not received as far as can be told: unacknowledged
   * ones, or before the server ever acknowledged anything, those not yet handed to the kernel.
   */
  get undeliveredBytes(): number {
    return this.#acknowledgements > 0 ? this.unacknowledgedBytes : this.bufferedBytes;
  }

  /** Bytes accepted by `write*` but not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#held.bytes + this.socket.writableLength;
  }

  get closed(): boolean {
    return this.#closed;
  }

  writeMetadata(metadata: Record<string, Amf0Value>): void {
    this.#send(
      CSID.data,
      MessageType.DATA_AMF0,
      0,
      encodeAmf0('@setDataFrame', 'onMetaData', new EcmaArray(metadata)),
      this.#streamId,
    );
  }

  /** Media goes out in merged writes (`merged-writes.ts`), within MERGED_WRITE_MS. */
  writeVideo(timestamp: number, body: Buffer): void {
    this.#send(CSID.video, MessageType.VIDEO, timestamp, body, this.#streamId, true);
  }

  writeAudio(timestamp: number, body: Buffer): void {
    this.#send(CSID.audio, MessageType.AUDIO, timestamp, body, this.#streamId, true);
  }

  /** Bytes written that the server has not acknowledged yet (acknowledgements count modulo 2^32). */
  get unacknowledgedBytes(): number {
    return Math.max(0, (this.bytesWritten - this.bytesAcknowledged) % 2 ** 32);
  }

  /** Acknowledgements the server sent so far: whether it makes progress. */
  get acknowledgements(): number {
    return this.#acknowledgements;
  }

  /**
   * Output waits on the server: more than a window unacknowledged, or, from a server that has never
   * acknowledged anything, bytes the kernel would not take (not those merely held for a merged
   * write). Whether that is a stall is the link's to decide (`rtmp-link.ts`).
   */
  get behind(): boolean {
    return this.#acknowledgements > 0 ? this.unacknowledgedBytes > ACK_WINDOW : this.socket.writableLength > 0;
  }

  /** Ends the connection with `error` (a stall the link decided): told as the connection's end. */
  abort(error: Error): void {
    this.#abort(error);
  }

  /** Unpublishes politely and closes; resolves when the socket is closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closedByUs = true;
    if (this.#streamId) {
      this.#command('FCUnpublish', [null, '']);
      this.#command('deleteStream', [null, this.#streamId]);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), 1000);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#held.flush();
      this.socket.end();
    });
  }

  #abort(error: Error): void {
    if (this.#closed) return;
    this.#error ??= error;
    this.socket.destroy();
  }

  async #handshake(): Promise<void> {
    const c1 = Buffer.concat([Buffer.alloc(8), randomBytes(HANDSHAKE_SIZE - 8)]);
    this.socket.write(Buffer.concat([Buffer.from([3]), c1]));
    const s0s1s2 = await this.#readExactly(1 + 2 * HANDSHAKE_SIZE);
    if (s0s1s2[0] !== 3) throw new RtmpError(`the destination answered the RTMP handshake with version ${s0s1s2[0]}`);
    this.socket.write(s0s1s2.subarray(1, 1 + HANDSHAKE_SIZE)); // C2 echoes S1
    this.socket.on('data', (data: Buffer) => this.#onData(data));
    this.socket.on('close', () => this.#onClose());
  }

  /** Reads the handshake reply, then hands any bytes that followed it to the chunk reader. */
  #readExactly(size: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let length = 0;
      const onData = (data: Buffer): void => {
        parts.push(data);
        length += data.length;
        if (length < size) return;
        cleanup();
        const all = Buffer.concat(parts);
        if (all.length > size) setImmediate(() => this.#onData(all.subarray(size)));
        resolve(all.subarray(0, size));
      };
      const onEnd = (): void => {
        cleanup();
        reject(this.#error ?? new RtmpError('the destination closed the connection during the RTMP handshake'));
      };
      const cleanup = (): void => {
        this.socket.off('data', onData);
        this.socket.off('close', onEnd);
      };
      this.socket.on('data', onData);
      this.socket.on('close', onEnd);
    });
  }

  async #startPublishing(options: RtmpPublishOptions, auth: string): Promise<void> {
    this.#sendControl(MessageType.SET_CHUNK_SIZE, uint32(OUT_CHUNK_SIZE));
    this.#sendControl(MessageType.WINDOW_ACK_SIZE, uint32(ACK_WINDOW));
    const query = options.query ?? '';
    const app = withQuery(withQuery(options.app, query), auth);
    const tcUrl = withQuery(withQuery(options.tcUrl, query), auth);
    const fourCcs = options.videoFourCcs ?? [];
    const enhanced = fourCcs.length
      ? {
          fourCcList: [...fourCcs],
          videoFourCcInfoMap: Object.fromEntries(fourCcs.map((fourCc) => [fourCc, CAN_ENCODE])),
          capsEx: 0,
        }
      : {};
    await this.#call('connect', [{ app, type: 'nonprivate', flashVer: options.flashVer, tcUrl, ...enhanced }]).catch(
      (error: unknown) => {
        throw error instanceof RtmpError ? new ConnectRefused(error) : error;
      },
    );
    if (options.connectOnly) return;
    options.onStep?.('application');
    const streamName = options.queryInName === false ? options.streamName : withQuery(options.streamName, query);
    this.#command('releaseStream', [null, streamName]);
    this.#command('FCPublish', [null, streamName]);
    const created = await this.#call('createStream', [null]);
    const streamId = created.find((v): v is number => typeof v === 'number');
    if (streamId === undefined) throw new RtmpError('the destination did not give a stream id for createStream');
    this.#streamId = streamId;
    const started = new Promise<void>((resolve, reject) => (this.#publishing = { resolve, reject }));
    this.#command('publish', [null, streamName, 'live'], streamId);
    await started;
  }

  /** Sends a command and waits for its _result; an _error rejects with the server's reason. */
  #call(name: string, args: Amf0Value[]): Promise<Amf0Value[]> {
    return new Promise((resolve, reject) => {
      const transaction = this.#command(name, args);
      this.#pending.set(transaction, { resolve, reject });
    });
  }

  #command(name: string, args: Amf0Value[], streamId = 0): number {
    const transaction = ++this.#transactions;
    this.#send(CSID.command, MessageType.COMMAND_AMF0, 0, encodeAmf0(name, transaction, ...args), streamId);
    return transaction;
  }

  #sendControl(type: number, body: Buffer): void {
    this.#send(CSID.control, type, 0, body, 0);
  }

  /** Holds the message's chunks, views of its body, not a copy: media until the thread's next merged write. */
  #send(csid: number, type: number, timestamp: number, body: Buffer, streamId: number, media = false): void {
    if (this.#closed) return;
    const chunks = messageChunks(csid, { type, timestamp, streamId, body }, OUT_CHUNK_SIZE);
    this.bytesWritten += this.#held.hold(chunks, media);
  }

  #onData(data: Buffer): void {
    this.#received += data.length;
    if (this.#serverWindow && this.#received - this.#lastAckSent >= this.#serverWindow) {
      this.#lastAckSent = this.#received;
      this.#sendControl(MessageType.ACKNOWLEDGEMENT, uint32(this.#received >>> 0));
    }
    let messages: RtmpMessage[];
    try {
      messages = this.#reader.push(data);
    } catch (error) {
      this.#abort(new RtmpError(`the destination sent malformed RTMP: ${(error as Error).message}`));
      return;
    }
    for (const message of messages) this.#onMessage(message);
  }

  #onMessage(message: RtmpMessage): void {
    const { body } = message;
    switch (message.type) {
      case MessageType.WINDOW_ACK_SIZE:
        this.#serverWindow = body.readUInt32BE(0);
        return;
      case MessageType.ACKNOWLEDGEMENT:
        this.bytesAcknowledged = body.readUInt32BE(0);
        this.lastAcknowledgedAt = monotonicMs();
        this.#acknowledgements++;
        return;
      case MessageType.USER_CONTROL:
        // PingRequest (6) is answered with PingResponse (7) carrying the same timestamp.
        if (body.readUInt16BE(0) === 6)
          this.#sendControl(MessageType.USER_CONTROL, Buffer.concat([Buffer.from([0, 7]), body.subarray(2, 6)]));
        return;
      case MessageType.COMMAND_AMF0:
        return this.#onCommand(decodeAmf0(body));
      default:
    }
  }

  #onCommand([name, transaction, , ...args]: Amf0Value[]): void {
    if (name === '_result' || name === '_error') {
      const pending = this.#pending.get(Number(transaction));
      if (!pending) return;
      this.#pending.delete(Number(transaction));
      if (name === '_result') pending.resolve(args);
      else pending.reject(statusError(args[0], 'the destination refused the connection'));
    } else if (name === 'onStatus') {
      const info = (args[0] ?? {}) as Record<string, Amf0Value>;
      if (info.code === 'NetStream.Publish.Start') {
        this.#publishing?.resolve();
        this.#publishing = undefined;
      } else if (info.level === 'error') {
        const error = statusError(info, 'the destination refused the stream');
        if (this.#publishing) this.#publishing.reject(error);
        else this.#abort(error);
      }
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = this.#closedByUs
      ? undefined
      : (this.#error ?? new RtmpError('the destination closed the connection'));
    const failure = error ?? new RtmpError('the connection was closed');
    for (const pending of this.#pending.values()) pending.reject(failure);
    this.#pending.clear();
    this.#publishing?.reject(failure);
    this.safeEmit('closed', error);
    this.removeAllListeners();
  }
}

function statusError(info: Amf0Value, fallback: string): RtmpError {
  const fields = (info && typeof info === 'object' ? info : {}) as Record<string, Amf0Value>;
  const code = typeof fields.code === 'string' ? fields.code : undefined;
  const description = typeof fields.description === 'string' ? fields.description : undefined;
  return new RtmpError([code, description].filter(Boolean).join(': ') || fallback, code, description);
}

/** Appends `extra` to a URL-like string's query. */
function withQuery(text: string, extra: string): string {
  if (!extra) return text;
  return `${text}${text.includes('?') ? '&' : '?'}${extra}`;
}

function uint32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}
