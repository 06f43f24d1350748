/**
 * RTP payloads for one H.264 access unit (RFC 6184, packetization-mode=1), as Chromium sends them:
 * SPS and PPS aggregated in one STAP-A ahead of the IDR slice, NAL units that fit sent whole, larger
 * ones split into FU-A fragments.
 */
const MAX_RTP_PAYLOAD = 1200;

const NAL_SPS = 7;
const NAL_PPS = 8;
const STAP_A = 24;
const FU_A = 28;

export function packetizeH264(nals: readonly Buffer[], maxPayload = MAX_RTP_PAYLOAD): Buffer[] {
  const payloads: Buffer[] = [];
  const parameterSets = nals.filter((nal) => isParameterSet(nal));
  const aggregate = parameterSets.reduce((size, nal) => size + 2 + nal.length, 1);
  if (parameterSets.length > 1 && aggregate <= maxPayload) {
    payloads.push(stapA(parameterSets));
  } else {
    payloads.push(...parameterSets.flatMap((nal) => fragment(nal, maxPayload)));
  }
  for (const nal of nals) if (!isParameterSet(nal)) payloads.push(...fragment(nal, maxPayload));
  return payloads;
}

function isParameterSet(nal: Buffer): boolean {
  const type = nal[0]! & 0x1f;
  return type === NAL_SPS || type === NAL_PPS;
}

function stapA(nals: readonly Buffer[]): Buffer {
  const nri = Math.max(...nals.map((nal) => nal[0]! & 0x60));
  const parts: Buffer[] = [Buffer.from([nri | STAP_A])];
  for (const nal of nals) {
    const size = Buffer.alloc(2);
    size.writeUInt16BE(nal.length);
    parts.push(size, nal);
  }
  return Buffer.concat(parts);
}

function fragment(nal: Buffer, maxPayload: number): Buffer[] {
  if (nal.length <= maxPayload) return [nal];
  const header = nal[0]!;
  const indicator = (header & 0xe0) | FU_A;
  const type = header & 0x1f;
  const body = nal.subarray(1);
  const chunk = maxPayload - 2;
  const fragments: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += chunk) {
    const start = offset === 0 ? 0x80 : 0;
    const end = offset + chunk >= body.length ? 0x40 : 0;
    fragments.push(
      Buffer.concat([Buffer.from([indicator, start | end | type]), body.subarray(offset, offset + chunk)]),
    );
  }
  return fragments;
}
