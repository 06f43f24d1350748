import { leb128, lowOverheadObus, OBU_TEMPORAL_DELIMITER, type Obu } from '../src/media/av1.js';

/**
 * AV1 temporal units into RTP payloads as a WebRTC sender makes them (the AOM AV1 RTP payload
 * format): temporal delimiters dropped, each OBU without its size field, as many OBU elements in a
 * packet as fit (the last without a length when the count fits W, else every one with a length),
 * an OBU larger than the room split across packets (Y on the packet it goes on from, Z on the next).
 */
export function av1RtpPayloads(
  temporalUnit: Buffer,
  maxPayload: number,
  newSequence: boolean,
  countInW = true,
): Buffer[] {
  if (maxPayload < 16) throw new RangeError('payloads of at least 16 bytes');
  const elements = [...lowOverheadObus(temporalUnit)]
    .filter((obu) => obu.type !== OBU_TEMPORAL_DELIMITER)
    .map(withoutSize);
  const packets: Buffer[] = [];
  let current: Buffer[] = [];
  let room = maxPayload - 1;
  let continues = false;
  const flush = (goesOn: boolean): void => {
    const useW = countInW && current.length <= 3;
    const parts = current.map((e, i) => (useW && i === current.length - 1 ? e : Buffer.concat([leb128(e.length), e])));
    const header =
      (continues ? 0x80 : 0) |
      (goesOn ? 0x40 : 0) |
      ((useW ? current.length : 0) << 4) |
      (newSequence && packets.length === 0 ? 0x08 : 0);
    packets.push(Buffer.concat([Buffer.from([header]), ...parts]));
    continues = goesOn;
    current = [];
    room = maxPayload - 1;
  };
  for (let element of elements) {
    // Each element costs its length prefix (at most 3 bytes here) besides its bytes.
    while (element.length + 3 > room) {
      if (room > 8) {
        const take = room - 3;
        current.push(element.subarray(0, take));
        element = element.subarray(take);
        flush(true);
      } else flush(false);
    }
    current.push(element);
    room -= element.length + 3;
  }
  if (current.length > 0) flush(false);
  return packets;
}

function withoutSize(obu: Obu): Buffer {
  const header = Buffer.from(obu.header);
  header[0] = header[0]! & ~0x02;
  return Buffer.concat([header, obu.payload]);
}

/** The temporal units of a low-overhead AV1 stream (ffmpeg's `-f obu`): each begins at a temporal delimiter. */
export function temporalUnits(stream: Buffer): Buffer[] {
  const units: Buffer[] = [];
  let offset = 0;
  let start = 0;
  for (const obu of lowOverheadObus(stream)) {
    if (obu.type === OBU_TEMPORAL_DELIMITER && offset > start) {
      units.push(stream.subarray(start, offset));
      start = offset;
    }
    offset = obu.end;
  }
  if (offset > start) units.push(stream.subarray(start, offset));
  return units;
}
