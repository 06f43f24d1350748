import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { decodeAmf0, encodeAmf0, type Amf0Value } from '../../src/rtmp/amf0.js';
import { ChunkReader, DEFAULT_CHUNK_SIZE, encodeMessage } from '../../src/rtmp/chunks.js';
import { now } from './processes.js';


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

  /** When set, every publish is refused with this onStatus error. */
  refuse: { code: string; description: string } | undefined;

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

const HANDSHAKE_SIZE = 1536;

class Connection {
  #buffer = Buffer.alloc(0);
  #stage: 'c0c1' | 'c2' | 'chunks' = 'c0c1';
  readonly #reader = new ChunkReader();
  #connect: Record<string, Amf0Value> = {};
  #publish?: RtmpPublish;

  constructor(
    private readonly socket: Socket,
    private readonly receiver: RtmpReceiver,
  ) {
    socket.on('data', (data) => {
      try {
        this.#consume(data, now());
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    socket.once('close', () => {
      if (this.#publish) receiver.emit('end', this.#publish);
    });
  }

  #consume(data: Buffer, arrivalMs: number): void {
    if (this.#stage === 'chunks') {
      for (const message of this.#reader.push(data)) this.#onMessage(message.type, message.timestamp, message.body, arrivalMs);
      return;
    }
    this.#buffer = Buffer.concat([this.#buffer, data]);
    if (this.#stage === 'c0c1') {
      if (this.#buffer.length < 1 + HANDSHAKE_SIZE) return;
      const c1 = this.#buffer.subarray(1, 1 + HANDSHAKE_SIZE);
      const s1 = Buffer.concat([Buffer.alloc(8), randomBytes(HANDSHAKE_SIZE - 8)]);
      this.socket.write(Buffer.concat([Buffer.from([3]), s1, c1]));
      this.#buffer = this.#buffer.subarray(1 + HANDSHAKE_SIZE);
      this.#stage = 'c2';
    }
    if (this.#stage === 'c2' && this.#buffer.length >= HANDSHAKE_SIZE) {
      const rest = this.#buffer.subarray(HANDSHAKE_SIZE);
      this.#stage = 'chunks';
      if (rest.length) this.#consume(rest, arrivalMs);
    }
  }

  #onMessage(type: number, timestamp: number, body: Buffer, arrivalMs: number): void {
    switch (type) {
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
        const refusal = this.receiver.refuse;
        const status = refusal ? { level: 'error', ...refusal } : { level: 'status', code: 'NetStream.Publish.Start', description: 'Publishing.' };
        this.#send(5, 20, encodeAmf0('onStatus', 0, null, status), 1);
        if (refusal) this.#publish = undefined;
        else this.receiver.emit('publish', this.#publish);
        return;
      }
      default:
    }
  }

  #send(csid: number, type: number, body: Buffer, streamId = 0): void {
    this.socket.write(encodeMessage(csid, { type, timestamp: 0, streamId, body }, DEFAULT_CHUNK_SIZE));
  }
}
