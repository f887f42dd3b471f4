// Codes packed as an LSB-first bit stream: code i occupies bits [i·b, (i + 1)·b), and bit j of the stream is bit
// (j mod 8) of byte ⌊j/8⌋. So 8-bit codes are one per byte; 4-bit two per byte, the first in the low nibble;
// 2-bit four per byte from the low bits up; 3-bit eight codes in three bytes, codes crossing byte boundaries
// (code 2 = bits 6–7 of byte 0 and bit 0 of byte 1). The stream takes ⌈n·b/8⌉ bytes, the unused high bits of the
// last byte zero. Eight codes always fill whole bytes (b of them), which is what lets a stream be packed in pieces.

/** Bytes that `count` codes of `bits` bits take. */
export function packedBytes(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/** Pack codes (each < 2^bits) into out (or a new array of packedBytes). */
export function pack(codes: Uint8Array, bits: number, out?: Uint8Array): Uint8Array {
  const n = codes.length;
  const bytes = out ?? new Uint8Array(packedBytes(n, bits));
  if (bits === 8) {
    bytes.set(codes);
    return bytes;
  }
  bytes.fill(0, 0, packedBytes(n, bits));
  if (bits === 4) {
    for (let i = 0; i < n; i++) bytes[i >> 1] |= codes[i] << ((i & 1) << 2);
    return bytes;
  }
  for (let i = 0, bit = 0; i < n; i++, bit += bits) {
    const byte = bit >> 3,
      shift = bit & 7;
    bytes[byte] |= codes[i] << shift;
    if (shift + bits > 8) bytes[byte + 1] |= codes[i] >> (8 - shift);
  }
  return bytes;
}

/** `count` codes from `bytes`, the first starting at bit `bitOffset` (< 8 · bytes.length) of the stream. */
export function unpack(out: Uint8Array, bytes: Uint8Array, bitOffset: number, count: number, bits: number): Uint8Array {
  if (bitOffset + count * bits > bytes.length * 8)
    throw new RangeError(`${count} ${bits}-bit codes from bit ${bitOffset} overrun ${bytes.length} bytes`);
  const mask = (1 << bits) - 1;
  if (bits === 8) out.set(bytes.subarray(bitOffset >> 3, (bitOffset >> 3) + count));
  else if (bits === 4 && (bitOffset & 7) === 0) {
    const b0 = bitOffset >> 3;
    for (let i = 0; i < count; i++) out[i] = (bytes[b0 + (i >> 1)] >> ((i & 1) << 2)) & mask;
  } else {
    for (let i = 0, bit = bitOffset; i < count; i++, bit += bits) {
      const byte = bit >> 3,
        shift = bit & 7;
      let v = bytes[byte] >> shift;
      if (shift + bits > 8) v |= bytes[byte + 1] << (8 - shift);
      out[i] = v & mask;
    }
  }
  return out;
}

/** Packs a stream of codes that arrives in pieces of any length: each push returns the bytes completed so far. */
export class CodeStream {
  private readonly carry = new Uint8Array(8);
  private carried = 0;

  constructor(readonly bits: number) {}

  push(codes: Uint8Array): Uint8Array {
    const total = this.carried + codes.length;
    const whole = total - (total % 8);
    let joined = codes;
    if (this.carried > 0) {
      joined = new Uint8Array(total);
      joined.set(this.carry.subarray(0, this.carried));
      joined.set(codes, this.carried);
    }
    this.carry.set(joined.subarray(whole));
    this.carried = total - whole;
    return pack(joined.subarray(0, whole), this.bits);
  }

  /** The last, partial byte(s). */
  end(): Uint8Array {
    const bytes = pack(this.carry.subarray(0, this.carried), this.bits);
    this.carried = 0;
    return bytes;
  }
}
