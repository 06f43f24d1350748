import { avcSequenceHeader } from '../../src/media/h264.js';
import { testFixture } from './synthetic.js';

/** The test fixture's H.264 as FLV video tag bodies: its AVC sequence header, and frame `i` (looping), NAL units length-prefixed. */
export function fixtureFlvVideo(): { header: Buffer; frame: (i: number) => Buffer } {
  const units = testFixture().video;
  const nal = (type: number): Buffer => units.flatMap((u) => u.nals).find((n) => (n[0]! & 0x1f) === type)!;
  const length = (n: Buffer): Buffer => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(n.length);
    return prefix;
  };
  return {
    header: avcSequenceHeader(nal(7), nal(8)),
    frame: (i) => {
      const unit = units[i % units.length]!;
      const nals = unit.nals.filter((n) => ![7, 8, 9].includes(n[0]! & 0x1f));
      return Buffer.concat([Buffer.from([unit.key ? 0x17 : 0x27, 1, 0, 0, 0]), ...nals.flatMap((n) => [length(n), n])]);
    },
  };
}
