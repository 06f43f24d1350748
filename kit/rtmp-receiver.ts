import { isKeyframeBody, isSequenceHeader, isVideoSequenceHeader } from '../src/media/flv.js';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { decodeAmf0, encodeAmf0, type Amf0Value } from '../src/media/amf0.js';
import { ChunkReader, DEFAULT_CHUNK_SIZE, encodeMessage } from '../src/rtmp/chunks.js';
import { now } from './processes.js';

/** An AMF0 string or number as text; anything else (an object, null) as empty. */
const amfText = (value: unknown): string =>
  typeof value === 'string' || typeof value === 'number' ? String(value) : '';

export interface RtmpPublish {
  app: string;
  tcUrl: string;
  flashVer: string;
  /** The name given to `publish`, query string included. */
  streamName: string;
  remoteAddress: string;
  /** Which connection, counted from 1: a reconnecting publisher comes back with a new one. */
  connection: number;
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

/**
 * Where the sound stands against the pictures at the destination (ms): of the messages that
 * arrived in `[fromMs, toMs)`, the mean of timestamp less arrival, audio's less video's. The
 * messages must be of one connection (a new one may start its timestamps anew); NaN without both
 * kinds.
 */
export function avOffsetMs(media: readonly RtmpMediaMessage[], fromMs: number, toMs: number): number {
  const mean = (kind: string): number => {
    const within = media.filter((m) => m.kind === kind && m.arrivalMs >= fromMs && m.arrivalMs < toMs);
    return within.reduce((sum, m) => sum + m.timestamp - m.arrivalMs, 0) / within.length;
  };
  return mean('audio') - mean('video');
}

/** RTMP authentication as Wowza (authmod=adobe) and Limelight (authmod=llnw) ask for it. */
export interface ReceiverAuth {
  method: 'adobe' | 'llnw';
  user: string;
  password: string;
}

export interface RtmpReceiverEvents {
  /** Every connect command, with its command object (app, tcUrl, flashVer, …). */
  connect: [Record<string, Amf0Value>];
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

  /**
   * When set, every publish is refused with this onStatus error. `{tcUrl}`, `{app}` and `{stream}` in
   * the description are replaced with what the client sent, as servers that echo them do.
   */
  refuse: { code: string; description: string } | undefined;

  /** Refusals for the next publishes, one each, before `refuse` applies. */
  readonly refusals: { code: string; description: string }[] = [];

  /** Connections accepted so far. */
  connections = 0;

  /** When set, connects must authenticate. */
  auth: ReceiverAuth | undefined;

  /** Challenges handed out, by opaque (adobe) or nonce (llnw), each answerable once. */
  readonly challenges = new Map<string, { salt: string; challenge: string }>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly host: string,
  ) {
    super();
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      new Connection(socket, this, ++this.connections);
    });
  }

  static async start(port = 0, host = '127.0.0.1'): Promise<RtmpReceiver> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return new RtmpReceiver(server, (server.address() as { port: number }).port, host);
  }

  url(app = 'live'): string {
    return `rtmp://${this.host}:${this.port}/${app}`;
  }

  /** Ends every connection, as a server that drops its publishers does. */
  dropAll(): void {
    for (const socket of this.#sockets) socket.destroy();
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
    private readonly id: number,
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
      for (const message of this.#reader.push(data))
        this.#onMessage(message.type, message.timestamp, message.body, arrivalMs);
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
          key: video && isKeyframeBody(body),
          sequenceHeader: video ? isVideoSequenceHeader(body) : isSequenceHeader(body),
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
      case 'connect': {
        this.#connect = (command ?? {}) as Record<string, Amf0Value>;
        this.receiver.emit('connect', this.#connect);
        const refusal =
          this.receiver.auth && authenticate(this.receiver, this.receiver.auth, amfText(this.#connect.app));
        if (refusal) {
          // As Wowza: the reason in the description of an _error, then the connection is closed.
          this.#send(
            3,
            20,
            encodeAmf0('_error', txn, null, {
              level: 'error',
              code: 'NetConnection.Connect.Rejected',
              description: refusal,
            }),
          );
          this.socket.end();
          return;
        }
        this.#send(2, 5, Buffer.from([0, 0x26, 0x25, 0xa0])); // window acknowledgement size 2.5 MB
        this.#send(
          3,
          20,
          encodeAmf0(
            '_result',
            txn,
            { fmsVer: 'FMS/3,5,7,7009', capabilities: 31 },
            {
              level: 'status',
              code: 'NetConnection.Connect.Success',
              description: 'Connection succeeded.',
              objectEncoding: 0,
            },
          ),
        );
        return;
      }
      case 'createStream':
        this.#send(3, 20, encodeAmf0('_result', txn, null, 1));
        return;
      case 'publish': {
        const text = (key: string): string => amfText(this.#connect[key]);
        this.#publish = {
          app: text('app'),
          tcUrl: text('tcUrl'),
          flashVer: text('flashVer'),
          streamName: amfText(args[0]),
          remoteAddress: this.socket.remoteAddress ?? '',
          connection: this.id,
        };
        const refusal = this.receiver.refusals.shift() ?? this.receiver.refuse;
        const publish = this.#publish;
        const echo = (d: string): string =>
          d.replace('{tcUrl}', publish.tcUrl).replace('{app}', publish.app).replace('{stream}', publish.streamName);
        const status = refusal
          ? { level: 'error', code: refusal.code, description: echo(refusal.description) }
          : { level: 'status', code: 'NetStream.Publish.Start', description: 'Publishing.' };
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

/**
 * Checks a connect's app against the receiver's credentials; returns the refusal's description, or
 * undefined when accepted. The three steps and the hashes are those of Wowza's and Limelight's
 * RTMP authentication, as ffmpeg, FMLE and OBS answer them (ffmpeg itself is tested against this).
 */
function authenticate(receiver: RtmpReceiver, auth: ReceiverAuth, app: string): string | undefined {
  const reject = (reason: string): string => `[ AccessManager.Reject ] : [ authmod=${auth.method} ] : ${reason}`;
  const query = new Map(
    (app.split('?')[1] ?? '')
      .split('&')
      .filter((pair) => pair.includes('='))
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)] as const),
  );
  const user = query.get('user');
  if (query.get('authmod') !== auth.method || user === undefined)
    return `[ AccessManager.Reject ] : [ code=403 need auth; authmod=${auth.method} ] : `;
  if (decodeURIComponent(user) !== auth.user) return reject('?reason=nosuchuser');
  const md5 = (text: string, encoding: 'base64' | 'hex'): string => createHash('md5').update(text).digest(encoding);
  if (auth.method === 'adobe') {
    const opaque = query.get('opaque');
    const session = opaque === undefined ? undefined : receiver.challenges.get(opaque);
    if (!query.has('response') || !session) {
      // Salt and challenge with base64's '+', '/' and '=' as real servers send them; opaque differs from challenge.
      const salt = `${randomBytes(6).toString('base64')}+/=`;
      const challenge = randomBytes(4).toString('base64');
      const nextOpaque = randomBytes(4).toString('hex');
      receiver.challenges.set(nextOpaque, { salt, challenge });
      return reject(`?reason=needauth&user=${user}&salt=${salt}&challenge=${challenge}&opaque=${nextOpaque}`);
    }
    receiver.challenges.delete(opaque!);
    const secret = md5(auth.user + session.salt + auth.password, 'base64');
    return query.get('response') === md5(secret + opaque + (query.get('challenge') ?? ''), 'base64')
      ? undefined
      : reject(`?reason=authfailed&opaque=${opaque}`);
  }
  const nonce = query.get('nonce');
  if (!query.has('response') || nonce === undefined || !receiver.challenges.has(nonce)) {
    const next = randomBytes(8).toString('hex');
    receiver.challenges.set(next, { salt: '', challenge: next });
    return reject(`?reason=needauth&user=${user}&nonce=${next}`);
  }
  receiver.challenges.delete(nonce);
  const appName = app.split('?')[0]!;
  const ha1 = md5(`${auth.user}:live:${auth.password}`, 'hex');
  const ha2 = md5(`publish:/${appName.includes('/') ? appName : `${appName}/_definst_`}`, 'hex');
  const expected = md5(`${ha1}:${nonce}:${query.get('nc')}:${query.get('cnonce')}:auth:${ha2}`, 'hex');
  return query.get('response') === expected ? undefined : reject('?reason=authfailed');
}
