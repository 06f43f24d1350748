import type { CcPair } from './cea608.js';

/**
 * CEA-608 byte pairs in an H.264 access unit, as platforms read them: a CEA-708 `cc_data()`
 * structure in ATSC A/53 user data, in an SEI message of type 4
 * (`user_data_registered_itu_t_t35`), in an SEI NAL unit placed before the frame's first slice.
 */

const NAL_SEI = 6;
const SEI_USER_DATA_REGISTERED = 4;
/** ITU-T T.35 country code (United States) and provider code (ATSC), then the ATSC user identifier "GA94". */
const A53_HEADER = [0xb5, 0x00, 0x31, 0x47, 0x41, 0x39, 0x34];
/** ATSC user_data_type_code: cc_data. */
const CC_DATA = 0x03;
/** cc_data's first byte without its count: reserved bit 1, process_cc_data_flag 1, zero bit. */
const CC_DATA_FLAGS = 0xc0;
/** cc_data's reserved byte after the count, and the marker after the triplets. */
const RESERVED = 0xff;
/** A triplet's first byte: marker bits, cc_valid, cc_type 0 (608 data of field 1). */
const FIELD_1_VALID = 0xfc;
/** cc_count has five bits. */
const MAX_PAIRS = 31;

/** The SEI NAL unit (no start code or length) carrying `pairs` of CC1 for one frame. */
export function captionSei(pairs: readonly CcPair[]): Buffer {
  if (pairs.length === 0 || pairs.length > MAX_PAIRS) {
    throw new RangeError(`a frame carries 1 to ${MAX_PAIRS} caption byte pairs, not ${pairs.length}`);
  }
  const payload = [...A53_HEADER, CC_DATA, CC_DATA_FLAGS | pairs.length, RESERVED];
  for (const pair of pairs) payload.push(FIELD_1_VALID, pair >> 8, pair & 0xff);
  payload.push(RESERVED);
  const message = [SEI_USER_DATA_REGISTERED];
  let size = payload.length;
  for (; size >= 255; size -= 255) message.push(255);
  message.push(size, ...payload);
  // rbsp_trailing_bits: a stop bit, then zeros to the byte boundary.
  return Buffer.from([NAL_SEI, ...preventEmulation([...message, 0x80])]);
}

/** Inserts 0x03 wherever two zero bytes would be followed by a byte of 0 to 3 (H.264 7.4.1). */
function preventEmulation(bytes: number[]): number[] {
  const out: number[] = [];
  let zeros = 0;
  for (const byte of bytes) {
    if (zeros >= 2 && byte <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return out;
}

const FLV_AVC_HEADER = 5;
const LENGTH_SIZE = 4;

/**
 * An FLV video tag body (AVCPacketType 1: NAL units, each after its 4-byte length) with `sei`
 * inserted before its first slice; every other byte as it was. A body without a slice is returned
 * as it is.
 */
export function withSei(body: Buffer, sei: Buffer): Buffer {
  let offset = FLV_AVC_HEADER;
  while (offset + LENGTH_SIZE < body.length) {
    const type = body[offset + LENGTH_SIZE]! & 0x1f;
    if (type >= 1 && type <= 5) {
      const length = Buffer.alloc(LENGTH_SIZE);
      length.writeUInt32BE(sei.length);
      return Buffer.concat([body.subarray(0, offset), length, sei, body.subarray(offset)]);
    }
    offset += LENGTH_SIZE + body.readUInt32BE(offset);
  }
  return body;
}
