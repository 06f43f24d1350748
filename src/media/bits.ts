/**
 * Reads a bitstream's fields most significant bit first (H.264's SPS, AV1's sequence header);
 * past the end, or on a variable-length code longer than 32 bits, it throws, and the caller treats
 * the whole header as unreadable.
 */
export class BitReader {
  #bit = 0;
  constructor(private readonly data: Buffer) {}

  bits(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) {
      const byte = this.data[this.#bit >> 3];
      if (byte === undefined) throw new RangeError('the header ends early');
      value = value * 2 + ((byte >> (7 - (this.#bit & 7))) & 1);
      this.#bit++;
    }
    return value;
  }

  flag(): boolean {
    return this.bits(1) === 1;
  }

  /** Unsigned exp-Golomb: H.264's ue(v), AV1's uvlc(). */
  ue(): number {
    let zeros = 0;
    while (this.bits(1) === 0) if (++zeros > 31) throw new RangeError('a variable-length code too long');
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  /** Signed exp-Golomb: H.264's se(v). */
  se(): number {
    const k = this.ue();
    return k % 2 ? (k + 1) / 2 : -k / 2;
  }
}
