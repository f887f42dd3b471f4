// Packing codes into bytes (src/quant/pack.ts): the documented layout as hand-worked bytes for each width, then
// pack → unpack round trips at every width and length (every partial last byte), unpacking from any element,
// and a stream packed in pieces equal to the whole.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CodeStream, pack, packedBytes, unpack } from "../src/quant/pack.js";

test("layout: 8-bit one per byte, 4-bit low nibble first, 2-bit from the low bits, 3-bit LSB first", () => {
  assert.deepEqual([...pack(Uint8Array.of(0, 7, 255), 8)], [0, 7, 255]);
  assert.deepEqual([...pack(Uint8Array.of(1, 2, 3), 4)], [0x21, 0x03]);
  // 1 | 2<<2 | 3<<4 | 0<<6 = 0x39, then 3 alone
  assert.deepEqual([...pack(Uint8Array.of(1, 2, 3, 0, 3), 2)], [0x39, 0x03]);
  // Σ c_i << 3i = 0x1F58D1 for c = 1..7, 0: eight codes in three bytes, little-endian
  assert.deepEqual([...pack(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 0), 3)], [0xd1, 0x58, 0x1f]);
  // three 3-bit codes of 7: nine bits set
  assert.deepEqual([...pack(Uint8Array.of(7, 7, 7), 3)], [0xff, 0x01]);
});

test("packedBytes is ⌈n·bits/8⌉", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 8, 9].map((n) => packedBytes(n, 3)),
    [0, 1, 1, 2, 3, 4],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((n) => packedBytes(n, 4)),
    [0, 1, 1, 2],
  );
  assert.deepEqual(
    [1, 4, 5].map((n) => packedBytes(n, 2)),
    [1, 1, 2],
  );
  assert.equal(packedBytes(5, 8), 5);
});

function codes(n: number, bits: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> (32 - bits);
  }
  return out;
}

for (const bits of [8, 4, 3, 2]) {
  test(`${bits}-bit: pack → unpack round trip for every length 0..40 and from every starting element`, () => {
    for (let n = 0; n <= 40; n++) {
      const c = codes(n, bits, n + bits);
      const bytes = pack(c, bits);
      assert.equal(bytes.length, packedBytes(n, bits));
      // unused high bits of the last byte are zero
      if ((n * bits) % 8) assert.equal(bytes[bytes.length - 1] >> ((n * bits) % 8), 0, `n = ${n}`);
      assert.deepEqual(unpack(new Uint8Array(n), bytes, 0, n, bits), c);
      for (let first = 0; first < n; first++) {
        // as a reader does: only the bytes covering elements [first, n)
        const byte0 = Math.floor((first * bits) / 8);
        const part = bytes.subarray(byte0);
        const got = unpack(new Uint8Array(n - first), part, first * bits - byte0 * 8, n - first, bits);
        assert.deepEqual(got, c.subarray(first), `n = ${n}, from ${first}`);
      }
    }
  });

  test(`${bits}-bit: a stream packed in pieces of any length equals the whole`, () => {
    const c = codes(203, bits, 99);
    const whole = pack(c, bits);
    for (const piece of [1, 3, 7, 8, 13, 64, 203]) {
      const stream = new CodeStream(bits);
      const parts: number[] = [];
      for (let i = 0; i < c.length; i += piece) parts.push(...stream.push(c.subarray(i, i + piece)));
      parts.push(...stream.end());
      assert.deepEqual(parts, [...whole], `pieces of ${piece}`);
    }
  });
}

test("unpacking past the end of the bytes is a RangeError", () => {
  assert.throws(() => unpack(new Uint8Array(3), Uint8Array.of(0xff), 0, 3, 3), RangeError);
  assert.throws(() => unpack(new Uint8Array(2), Uint8Array.of(0xff), 4, 2, 4), RangeError);
});
