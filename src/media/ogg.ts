import { OPUS_CLOCK_RATE } from './codecs.js';

/** Ogg's CRC-32 (polynomial 0x04c11db7, not reflected, starting at 0), by table. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

function oggCrc(page: Buffer): number {
  let crc = 0;
  for (let i = 0; i < page.length; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ page[i]!) & 0xff]!) >>> 0;
  return crc;
}

const HEADER_BYTES = 27;
const FIRST_PAGE = 0x02;

/**
 * An Ogg Opus stream (RFC 7845) written packet by packet, each packet a page of its own, so that a
 * reader such as ffmpeg gets every packet as soon as it is written: the identification header
 * (stereo, no pre-skip), the comment header, then the audio pages, each with the granule position
 * (48 kHz samples) of its packet's end.
 */
export class OggOpusWriter {
  #sequence = 0;

  constructor(private readonly serial = 0x6f707573) {}

  /** The two header pages, written once before any audio. */
  headers(): Buffer {
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head[8] = 1; // version
    head[9] = 2; // channels
    head.writeUInt16LE(0, 10); // pre-skip: the samples keep the publisher's timing as they are
    head.writeUInt32LE(OPUS_CLOCK_RATE, 12);
    head.writeInt16LE(0, 16); // output gain
    head[18] = 0; // channel mapping family 0: mono or stereo
    const vendor = Buffer.from('gateway', 'latin1');
    const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
    tags.write('OpusTags', 0, 'latin1');
    tags.writeUInt32LE(vendor.length, 8);
    vendor.copy(tags, 12);
    tags.writeUInt32LE(0, 12 + vendor.length); // no comments
    return Buffer.concat([this.page(head, 0, FIRST_PAGE), this.page(tags, 0)]);
  }

  /** One page holding `packet`, which ends at `granule` (48 kHz samples since the stream's start). */
  page(packet: Buffer, granule: number, flags = 0): Buffer {
    const lacing = Math.floor(packet.length / 255) + 1;
    if (lacing > 255) throw new Error(`an Opus packet of ${packet.length} bytes does not fit one Ogg page`);
    const page = Buffer.alloc(HEADER_BYTES + lacing + packet.length);
    page.write('OggS', 0, 'latin1');
    page[4] = 0; // version
    page[5] = flags;
    page.writeBigInt64LE(BigInt(granule), 6);
    page.writeUInt32LE(this.serial, 14);
    page.writeUInt32LE(this.#sequence++, 18);
    page[26] = lacing;
    page.fill(255, HEADER_BYTES, HEADER_BYTES + lacing - 1);
    page[HEADER_BYTES + lacing - 1] = packet.length % 255;
    packet.copy(page, HEADER_BYTES + lacing);
    page.writeUInt32LE(oggCrc(page), 22);
    return page;
  }
}

/** Samples at 48 kHz per frame of each Opus configuration (RFC 6716 3.1: SILK, hybrid, CELT). */
const FRAME_SAMPLES = [
  ...[480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880],
  ...[480, 960, 480, 960],
  ...[120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960],
];

/** The samples (at 48 kHz) one Opus packet holds, read from its table of contents; 0 for one that cannot be read. */
export function opusPacketSamples(packet: Buffer): number {
  if (packet.length < 1) return 0;
  const toc = packet[0]!;
  const frameSamples = FRAME_SAMPLES[toc >> 3]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code === 3 ? (packet.length < 2 ? 0 : packet[1]! & 0x3f) : 2;
  const samples = frames * frameSamples;
  return samples > 5760 ? 0 : samples; // at most 120 ms in a packet
}

/** The samples (at 48 kHz) of the Opus packets in `pages`, whole Ogg pages one after another as `OggOpusWriter` makes them. */
export function oggOpusSamples(pages: Buffer): number {
  let samples = 0;
  let at = 0;
  while (at + HEADER_BYTES <= pages.length && pages.toString('latin1', at, at + 4) === 'OggS') {
    const lacing = pages[at + 26]!;
    const table = pages.subarray(at + HEADER_BYTES, at + HEADER_BYTES + lacing);
    const size = table.reduce((sum, byte) => sum + byte, 0);
    const body = at + HEADER_BYTES + lacing;
    // The two header pages (OpusHead, OpusTags) hold no audio.
    if (pages[at + 5]! === 0 && !pages.toString('latin1', body, body + 4).startsWith('Opus'))
      samples += opusPacketSamples(pages.subarray(body, body + size));
    at = body + size;
  }
  return samples;
}

/** 20 ms of silence: a CELT fullband frame that decodes to nothing (config 31, one frame). */
export const OPUS_SILENCE_20MS = Buffer.from([0xf8, 0xff, 0xfe]);
export const OPUS_SILENCE_SAMPLES = 960;
