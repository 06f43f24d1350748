/** AMF0 (Adobe's Action Message Format 0), just what RTMP commands and onMetaData use. */
export type Amf0Value =
  number | boolean | string | null | undefined | Date | Amf0Value[] | EcmaArray | { [key: string]: Amf0Value };

/** An associative array (marker 0x08), which onMetaData is by convention; written like an object otherwise. */
export class EcmaArray {
  constructor(readonly entries: Record<string, Amf0Value>) {}
}

export function decodeAmf0(buffer: Buffer): Amf0Value[] {
  const values: Amf0Value[] = [];
  const reader = { offset: 0 };
  while (reader.offset < buffer.length) values.push(readValue(buffer, reader));
  return values;
}

function readValue(b: Buffer, r: { offset: number }): Amf0Value {
  const marker = b[r.offset++];
  switch (marker) {
    case 0x00: {
      const value = b.readDoubleBE(r.offset);
      r.offset += 8;
      return value;
    }
    case 0x01:
      return b[r.offset++] !== 0;
    case 0x02:
      return readString(b, r, 2);
    case 0x0c:
      return readString(b, r, 4);
    case 0x03:
      return readProperties(b, r);
    case 0x08:
      r.offset += 4; // the count is a hint; the end marker is what counts
      return readProperties(b, r);
    case 0x0a: {
      const count = b.readUInt32BE(r.offset);
      r.offset += 4;
      return Array.from({ length: count }, () => readValue(b, r));
    }
    case 0x0b: {
      const ms = b.readDoubleBE(r.offset);
      r.offset += 10;
      return new Date(ms);
    }
    case 0x05:
      return null;
    case 0x06:
      return undefined;
    default:
      throw new Error(`AMF0 marker ${marker} at byte ${r.offset - 1} is not supported`);
  }
}

function readString(b: Buffer, r: { offset: number }, lengthBytes: 2 | 4): string {
  const length = lengthBytes === 2 ? b.readUInt16BE(r.offset) : b.readUInt32BE(r.offset);
  r.offset += lengthBytes;
  const value = b.toString('utf8', r.offset, r.offset + length);
  r.offset += length;
  return value;
}

function readProperties(b: Buffer, r: { offset: number }): { [key: string]: Amf0Value } {
  const object: { [key: string]: Amf0Value } = {};
  for (;;) {
    const key = readString(b, r, 2);
    if (key === '' && b[r.offset] === 0x09) {
      r.offset++;
      return object;
    }
    object[key] = readValue(b, r);
  }
}

export function encodeAmf0(...values: Amf0Value[]): Buffer {
  return Buffer.concat(values.map(writeValue));
}

function writeValue(value: Amf0Value): Buffer {
  if (value === null) return Buffer.from([0x05]);
  if (value === undefined) return Buffer.from([0x06]);
  if (typeof value === 'number') {
    const b = Buffer.alloc(9);
    b.writeDoubleBE(value, 1);
    return b;
  }
  if (typeof value === 'boolean') return Buffer.from([0x01, value ? 1 : 0]);
  if (typeof value === 'string') return Buffer.concat([Buffer.from([0x02]), shortString(value)]);
  if (value instanceof Date) throw new Error('AMF0 dates are not written');
  if (Array.isArray(value)) {
    // A strict array (Enhanced RTMP's `fourCcList` in connect).
    const head = Buffer.alloc(5);
    head[0] = 0x0a;
    head.writeUInt32BE(value.length, 1);
    return Buffer.concat([head, ...value.map(writeValue)]);
  }
  const ecma = value instanceof EcmaArray;
  const entries = Object.entries(ecma ? value.entries : value);
  const parts: Buffer[] = [];
  if (ecma) {
    const head = Buffer.alloc(5);
    head[0] = 0x08;
    head.writeUInt32BE(entries.length, 1);
    parts.push(head);
  } else parts.push(Buffer.from([0x03]));
  for (const [key, item] of entries) parts.push(shortString(key), writeValue(item));
  parts.push(Buffer.from([0x00, 0x00, 0x09]));
  return Buffer.concat(parts);
}

function shortString(value: string): Buffer {
  const body = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(body.length);
  return Buffer.concat([length, body]);
}
