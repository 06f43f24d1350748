/** RTMP chunk streams (Adobe RTMP specification 1.0, §5.3): messages split into chunks and back. */

export interface RtmpMessage {
  type: number;
  /** Milliseconds, 32-bit. */
  timestamp: number;
  streamId: number;
  body: Buffer;
}

export const MessageType = {
  SET_CHUNK_SIZE: 1,
  ABORT: 2,
  ACKNOWLEDGEMENT: 3,
  USER_CONTROL: 4,
  WINDOW_ACK_SIZE: 5,
  SET_PEER_BANDWIDTH: 6,
  AUDIO: 8,
  VIDEO: 9,
  DATA_AMF0: 18,
  COMMAND_AMF0: 20,
} as const;

export const DEFAULT_CHUNK_SIZE = 128;
const EXTENDED_TIMESTAMP = 0xffffff;

/** One message as chunks: a type-0 chunk with the full header, then type-3 continuations. */
export function encodeMessage(csid: number, message: RtmpMessage, chunkSize: number): Buffer {
  return Buffer.concat(messageChunks(csid, message, chunkSize));
}

/**
 * One message as the pieces of its chunks, in order: headers, and views of the body (not copies),
 * for a writer that sends them together (a corked socket's one `writev`).
 */
export function messageChunks(csid: number, message: RtmpMessage, chunkSize: number): Buffer[] {
  const { body } = message;
  const timestamp = message.timestamp >>> 0;
  const extended = timestamp >= EXTENDED_TIMESTAMP;
  const basic = basicHeader(0, csid);
  const header = Buffer.allocUnsafe(basic.length + 11 + (extended ? 4 : 0));
  basic.copy(header);
  const offset = basic.length;
  header.writeUIntBE(extended ? EXTENDED_TIMESTAMP : timestamp, offset, 3);
  header.writeUIntBE(body.length, offset + 3, 3);
  header[offset + 6] = message.type;
  header.writeUInt32LE(message.streamId, offset + 7);
  if (extended) header.writeUInt32BE(timestamp, offset + 11);
  if (body.length <= chunkSize) return [header, body];

  // A type-3 header repeats the extended timestamp: the continuation is the basic header and it.
  const continuation = extended
    ? Buffer.concat([basicHeader(3, csid), header.subarray(header.length - 4)])
    : basicHeader(3, csid);
  const parts: Buffer[] = [header, body.subarray(0, chunkSize)];
  for (let at = chunkSize; at < body.length; at += chunkSize)
    parts.push(continuation, body.subarray(at, at + chunkSize));
  return parts;
}

function basicHeader(format: number, csid: number): Buffer {
  if (csid < 2 || csid > 65599) throw new RangeError(`chunk stream id ${csid} is out of range`);
  if (csid < 64) return Buffer.from([(format << 6) | csid]);
  if (csid < 320) return Buffer.from([format << 6, csid - 64]);
  return Buffer.from([(format << 6) | 1, (csid - 64) & 0xff, (csid - 64) >> 8]);
}

interface ChunkStreamState {
  timestamp: number;
  delta: number;
  length: number;
  type: number;
  streamId: number;
  extended: boolean;
  parts?: Buffer[];
  received: number;
}

/**
 * Reassembles messages from a byte stream of chunks. Bytes may arrive split anywhere; `push`
 * returns the messages completed so far. Set Chunk Size messages from the peer are applied here.
 */
export class ChunkReader {
  #buffer: Buffer = Buffer.alloc(0);
  #chunkSize = DEFAULT_CHUNK_SIZE;
  readonly #streams = new Map<number, ChunkStreamState>();

  push(data: Buffer): RtmpMessage[] {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, data]) : data;
    const messages: RtmpMessage[] = [];
    for (;;) {
      const message = this.#readChunk();
      if (message === undefined) break;
      if (message === null) continue;
      if (message.type === MessageType.SET_CHUNK_SIZE && message.body.length >= 4) {
        this.#chunkSize = message.body.readUInt32BE(0) & 0x7fffffff;
      }
      messages.push(message);
    }
    return messages;
  }

  /** A completed message, null for a chunk that did not complete one, undefined when data is short. */
  #readChunk(): RtmpMessage | null | undefined {
    const b = this.#buffer;
    if (b.length < 1) return undefined;
    const format = b[0]! >> 6;
    let csid = b[0]! & 0x3f;
    let offset = 1;
    if (csid === 0) {
      if (b.length < 2) return undefined;
      csid = 64 + b[1]!;
      offset = 2;
    } else if (csid === 1) {
      if (b.length < 3) return undefined;
      csid = 64 + b[1]! + b[2]! * 256;
      offset = 3;
    }
    const headerSize = [11, 7, 3, 0][format]!;
    if (b.length < offset + headerSize) return undefined;
    const stream = this.#streams.get(csid) ?? {
      timestamp: 0,
      delta: 0,
      length: 0,
      type: 0,
      streamId: 0,
      extended: false,
      received: 0,
    };
    const startsMessage = stream.parts === undefined;
    const header = offset;
    let field = format < 3 ? b.readUIntBE(header, 3) : 0;
    const length = format <= 1 ? b.readUIntBE(header + 3, 3) : stream.length;
    const extended = format < 3 ? field === EXTENDED_TIMESTAMP : stream.extended;
    offset += headerSize;
    if (extended) {
      if (b.length < offset + 4) return undefined;
      if (format < 3) field = b.readUInt32BE(offset);
      offset += 4;
    }
    const size = Math.min(this.#chunkSize, length - (startsMessage ? 0 : stream.received));
    if (b.length < offset + size) return undefined;

    // The whole chunk is here: commit its header to the stream's state.
    if (format <= 1) {
      stream.length = length;
      stream.type = b[header + 6]!;
    }
    if (format === 0) stream.streamId = b.readUInt32LE(header + 7);
    if (format < 3) stream.extended = extended;
    if (format === 0) {
      stream.timestamp = field;
      stream.delta = 0;
    } else if (format < 3) {
      stream.delta = field;
      stream.timestamp = (stream.timestamp + field) >>> 0;
    } else if (startsMessage) {
      stream.timestamp = (stream.timestamp + stream.delta) >>> 0;
    }
    if (startsMessage) {
      stream.parts = [];
      stream.received = 0;
    }
    stream.parts!.push(b.subarray(offset, offset + size));
    stream.received += size;
    this.#streams.set(csid, stream);
    this.#buffer = b.subarray(offset + size);
    if (stream.received < stream.length) return null;
    const body = stream.parts!.length === 1 ? stream.parts![0]! : Buffer.concat(stream.parts!);
    stream.parts = undefined;
    return { type: stream.type, timestamp: stream.timestamp, streamId: stream.streamId, body };
  }
}
