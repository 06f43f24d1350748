import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { decodeAmf0, encodeAmf0, type Amf0Value } from './amf0.js';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = (): number => performance.timeOrigin + performance.now();

export interface RtmpPublish {
  app: string;
  tcUrl: string;
  flashVer: string;
  /** The name given to `publish`, query string included. */
  streamName: string;
  remoteAddress: string;
}

export interface RtmpMediaMessage {
  publish: RtmpPublish;
  kind: 'audio' | 'video';
  /** RTMP timestamp in milliseconds. */
  timestamp: number;
  /** When the last byte of the message was read. */
  arrivalMs: number;
  /** Video: a keyframe. */
  key: boolean;
  /** The AVC/AAC sequence header rather than media. */
  sequenceHeader: boolean;
  /** The FLV tag body. */
  data: Buffer;
}

export interface RtmpReceiverEvents {
  publish: [RtmpPublish];
  media: [RtmpMediaMessage];
  metadata: [RtmpPublish, Record<string, Amf0Value>];
  end: [RtmpPublish];
}

/**
 * A minimal RTMP server that accepts publishers and reports every message with its arrival time:
 * the precise view of what reached an RTMP server, which nginx-rtmp's statistics do not give.
 * Loopback only.
 */
export class RtmpReceiver extends EventEmitter<RtmpReceiverEvents> {
  readonly #sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    super();
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      new Connection(socket, this);
    });
  }

  static async start(port = 0): Promise<RtmpReceiver> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return new RtmpReceiver(server, (server.address() as { port: number }).port);
  }

  url(app = 'live'): string {
    return `rtmp://127.0.0.1:${this.port}/${app}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface ChunkStream {
  timestamp: number;
  delta: number;
  length: number;
  type: number;
  streamId: number;
  extended: boolean;
  body?: Buffer[];
  received: number;
}

const HANDSHAKE_SIZE = 1536;

class Connection {
  #buffer = Buffer.alloc(0);
  #stage: 'c0c1' | 'c2' | 'chunks' = 'c0c1';
  #chunkSize = 128;
  readonly #streams = new Map<number, ChunkStream>();
  #connect: Record<string, Amf0Value> = {};
  #publish?: RtmpPublish;

  constructor(
    private readonly socket: Socket,
    private readonly receiver: RtmpReceiver,
  ) {
    socket.on('data', (data) => {
      this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, data]) : data;
      try {
        this.#consume(now());
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    socket.once('close', () => {
      if (this.#publish) receiver.emit('end', this.#publish);
    });
  }

  #consume(arrivalMs: number): void {
    for (;;) {
      if (this.#stage === 'c0c1') {
        if (this.#buffer.length < 1 + HANDSHAKE_SIZE) return;
        const c1 = this.#buffer.subarray(1, 1 + HANDSHAKE_SIZE);
        const s1 = Buffer.concat([Buffer.alloc(8), randomBytes(HANDSHAKE_SIZE - 8)]);
        this.socket.write(Buffer.concat([Buffer.from([3]), s1, c1]));
        this.#buffer = this.#buffer.subarray(1 + HANDSHAKE_SIZE);
        this.#stage = 'c2';
      } else if (this.#stage === 'c2') {
        if (this.#buffer.length < HANDSHAKE_SIZE) return;
        this.#buffer = this.#buffer.subarray(HANDSHAKE_SIZE);
        this.#stage = 'chunks';
      } else if (!this.#readChunk(arrivalMs)) return;
    }
  }

  /** Reads one chunk if the buffer holds a whole one. */
  #readChunk(arrivalMs: number): boolean {
    const b = this.#buffer;
    if (b.length < 1) return false;
    const format = b[0]! >> 6;
    let csid = b[0]! & 0x3f;
    let offset = 1;
    if (csid === 0) {
      if (b.length < 2) return false;
      csid = 64 + b[1]!;
      offset = 2;
    } else if (csid === 1) {
      if (b.length < 3) return false;
      csid = 64 + b[1]! + b[2]! * 256;
      offset = 3;
    }
    const headerSize = [11, 7, 3, 0][format]!;
    if (b.length < offset + headerSize) return false;
    const previous = this.#streams.get(csid);
    const stream: ChunkStream = previous ?? { timestamp: 0, delta: 0, length: 0, type: 0, streamId: 0, extended: false, received: 0 };
    const startsMessage = stream.body === undefined;
    let field = format < 3 ? b.readUIntBE(offset, 3) : undefined;
    if (format <= 1) {
      stream.length = b.readUIntBE(offset + 3, 3);
      stream.type = b[offset + 6]!;
    }
    if (format === 0) stream.streamId = b.readUInt32LE(offset + 7);
    offset += headerSize;
    const extended = field === 0xffffff || (format === 3 && stream.extended);
    if (extended) {
      if (b.length < offset + 4) return false;
      const value = b.readUInt32BE(offset);
      if (format < 3) field = value;
      offset += 4;
    }
    const chunk = Math.min(this.#chunkSize, stream.length - (startsMessage ? 0 : stream.received));
    if (b.length < offset + chunk) return false;

    if (format < 3) stream.extended = extended;
    if (format === 0) {
      stream.timestamp = field!;
      stream.delta = 0;
    } else if (format < 3) {
      stream.delta = field!;
      stream.timestamp += stream.delta;
    } else if (startsMessage) {
      stream.timestamp += stream.delta;
    }
    if (startsMessage) {
      stream.body = [];
      stream.received = 0;
    }
    stream.body!.push(b.subarray(offset, offset + chunk));
    stream.received += chunk;
    this.#streams.set(csid, stream);
    this.#buffer = b.subarray(offset + chunk);
    if (stream.received >= stream.length) {
      const body = Buffer.concat(stream.body!);
      stream.body = undefined;
      this.#onMessage(stream.type, stream.timestamp, body, arrivalMs);
    }
    return true;
  }

  #onMessage(type: number, timestamp: number, body: Buffer, arrivalMs: number): void {
    switch (type) {
      case 1:
        this.#chunkSize = body.readUInt32BE(0) & 0x7fffffff;
        return;
      case 20:
        return this.#onCommand(decodeAmf0(body));
      case 18: {
        const [name, ...rest] = decodeAmf0(body);
        const metadata = name === '@setDataFrame' ? rest[1] : rest[0];
        if (this.#publish && metadata && typeof metadata === 'object') {
          this.receiver.emit('metadata', this.#publish, metadata as Record<string, Amf0Value>);
        }
        return;
      }
      case 8:
      case 9: {
        if (!this.#publish || body.length < 2) return;
        const video = type === 9;
        this.receiver.emit('media', {
          publish: this.#publish,
          kind: video ? 'video' : 'audio',
          timestamp,
          arrivalMs,
          key: video && body[0]! >> 4 === 1,
          sequenceHeader: body[1] === 0,
          data: body,
        });
        return;
      }
      default:
    }
  }

  #onCommand([name, transaction, command, ...args]: Amf0Value[]): void {
    const txn = typeof transaction === 'number' ? transaction : 0;
    switch (name) {
      case 'connect':
        this.#connect = (command ?? {}) as Record<string, Amf0Value>;
        this.#send(2, 5, Buffer.from([0, 0x26, 0x25, 0xa0])); // window acknowledgement size 2.5 MB
        this.#send(
          3,
          20,
          encodeAmf0('_result', txn, { fmsVer: 'FMS/3,5,7,7009', capabilities: 31 }, {
            level: 'status',
            code: 'NetConnection.Connect.Success',
            description: 'Connection succeeded.',
            objectEncoding: 0,
          }),
        );
        return;
      case 'createStream':
        this.#send(3, 20, encodeAmf0('_result', txn, null, 1));
        return;
      case 'publish': {
        const text = (key: string): string => String(this.#connect[key] ?? '');
        this.#publish = {
          app: text('app'),
          tcUrl: text('tcUrl'),
          flashVer: text('flashVer'),
          streamName: String(args[0] ?? ''),
          remoteAddress: this.socket.remoteAddress ?? '',
        };
        this.#send(
          5,
          20,
          encodeAmf0('onStatus', 0, null, { level: 'status', code: 'NetStream.Publish.Start', description: 'Publishing.' }),
          1,
        );
        this.receiver.emit('publish', this.#publish);
        return;
      }
      default:
    }
  }

  /** Writes one message: a type-0 chunk, then type-3 chunks of 128 bytes. */
  #send(csid: number, type: number, body: Buffer, streamId = 0): void {
    const header = Buffer.alloc(12);
    header[0] = csid;
    header.writeUIntBE(body.length, 4, 3);
    header[7] = type;
    header.writeUInt32LE(streamId, 8);
    const parts: Buffer[] = [header];
    for (let offset = 0; offset < body.length; offset += 128) {
      if (offset > 0) parts.push(Buffer.from([0xc0 | csid]));
      parts.push(body.subarray(offset, offset + 128));
    }
    this.socket.write(Buffer.concat(parts));
  }
}
