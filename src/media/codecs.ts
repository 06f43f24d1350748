/** Codec facts shared by ingest, publishers and pushes. */
export type VideoCodec = 'H264' | 'VP8' | 'VP9' | 'AV1';
export type MediaKind = 'audio' | 'video';

export const VIDEO_CLOCK_RATE = 90000;
export const OPUS_CLOCK_RATE = 48000;

/** Whether this RTP payload starts a keyframe (an IDR picture for H.264). */
export function isKeyframeStart(codec: VideoCodec, payload: Buffer): boolean {
  if (payload.length < 2) return false;
  switch (codec) {
    case 'H264':
      return h264StartsKeyframe(payload);
    case 'VP8':
      return vp8StartsKeyframe(payload);
    case 'VP9':
      return vp9StartsKeyframe(payload);
    case 'AV1':
      return av1StartsKeyframe(payload);
  }
}

export const NAL_IDR = 5;
export const NAL_SPS = 7;
export const NAL_PPS = 8;
export const NAL_STAP_A = 24;
export const NAL_FU_A = 28;

function h264StartsKeyframe(payload: Buffer): boolean {
  const type = payload[0]! & 0x1f;
  if (type === NAL_IDR || type === NAL_SPS) return true;
  if (type === NAL_FU_A) {
    const fuHeader = payload[1]!;
    return (fuHeader & 0x80) !== 0 && (fuHeader & 0x1f) === NAL_IDR;
  }
  if (type === NAL_STAP_A) {
    for (const nal of stapANalUnits(payload)) {
      const t = nal[0]! & 0x1f;
      if (t === NAL_IDR || t === NAL_SPS) return true;
    }
  }
  return false;
}

export function* stapANalUnits(payload: Buffer): Generator<Buffer> {
  let offset = 1;
  while (offset + 2 <= payload.length) {
    const size = payload.readUInt16BE(offset);
    offset += 2;
    if (size === 0 || offset + size > payload.length) return;
    yield payload.subarray(offset, offset + size);
    offset += size;
  }
}

/** RFC 7741: a VP8 keyframe starts where S=1, PID=0 and the payload header's P bit is 0. */
function vp8StartsKeyframe(payload: Buffer): boolean {
  const b0 = payload[0]!;
  const start = (b0 & 0x10) !== 0 && (b0 & 0x07) === 0;
  if (!start) return false;
  let offset = 1;
  if (b0 & 0x80) {
    const x = payload[offset++]!;
    if (x & 0x80) offset += (payload[offset]! & 0x80) !== 0 ? 2 : 1; // PictureID
    if (x & 0x40) offset += 1; // TL0PICIDX
    if (x & 0x30) offset += 1; // TID/KEYIDX
  }
  const header = payload[offset];
  return header !== undefined && (header & 0x01) === 0;
}

/** VP9 payload descriptor: B (start of frame) set and P (inter-picture predicted) clear. */
function vp9StartsKeyframe(payload: Buffer): boolean {
  const b0 = payload[0]!;
  const interPredicted = (b0 & 0x40) !== 0;
  const startOfFrame = (b0 & 0x08) !== 0;
  return startOfFrame && !interPredicted;
}

/**
 * The AV1 RTP aggregation header: N (the first packet of a coded video sequence, which starts at a
 * keyframe) set, and Z (its first OBU goes on from the packet before) clear.
 */
function av1StartsKeyframe(payload: Buffer): boolean {
  const aggregation = payload[0]!;
  return (aggregation & 0x08) !== 0 && (aggregation & 0x80) === 0;
}
