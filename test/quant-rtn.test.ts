// Block-wise RTN / NF4 weight quantization (src/quant/rtn.ts, clip.ts, nf4.ts, scheme.ts) and activation fake
// quantization: hand-computed small cases for every clip mode, rounding and NF4 level; quantize → dequantize round
// trips for every width and block kind, checked against bounds the test computes itself from the block's weights;
// degenerate blocks; streaming in pieces; every error path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../src/errors.js";
import { fakeQuantizeActivations } from "../src/quant/activations.js";
import { NF4_LEVELS, nearestNf4 } from "../src/quant/nf4.js";
import { BlockStatistics, decode, decodePacked, encode, QuantizeError, quantizeTensor } from "../src/quant/rtn.js";
import { AbsMoments } from "../src/quant/clip.js";
import { pack, unpack } from "../src/quant/pack.js";
import {
  formatBlock,
  formatClip,
  geometry,
  levelTable,
  parseBlock,
  parseClip,
  type Bits,
  type Block,
  type Clip,
  type Scheme,
} from "../src/quant/scheme.js";

const f = Math.fround;
const none: Clip = { method: "none" };
const rtn = (bits: Bits, block: Block = "tensor", clip: Clip = none): Scheme => ({ kind: "rtn", bits, block, clip });
const nf4 = (block: Block = "tensor", range: "absmax" | "minmax" = "absmax", clip: Clip = none): Scheme => ({
  kind: "nf4",
  range,
  block,
  clip,
});

/** Deterministic pseudo-random weights around 0 (a few larger ones), exactly float32. */
function weights(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.2 * (i % 17 === 5 ? 8 : 1);
  }
  return out;
}

// ---- hand-computed cases ----

test("rtn: scale = (max − min)/(2^bits − 1), q = round((w − min)/scale), ŵ = q·scale + min", () => {
  const w = Float32Array.of(0, 1, 2, 3, 4, 5);
  const { dequantized, codes, params } = quantizeTensor(w, [6], rtn(2));
  const step = f(5 / 3);
  assert.equal(params.scale[0], step);
  assert.equal(params.offset[0], 0);
  // 1/step = 0.6 → 1, 2 → 1.2 → 1, 3 → 1.8 → 2, 4 → 2.4 → 2, 5 → 3
  assert.deepEqual([...codes], [0, 1, 1, 2, 2, 3]);
  assert.deepEqual([...dequantized], [0, step, step, f(2 * step), f(2 * step), f(3 * step)]);
});

test("rtn rounds exact halves to even, as torch.round does", () => {
  // min 0, max 3, 2 bits: scale 1, so w itself is the position between codes
  const { codes } = quantizeTensor(Float32Array.of(0, 0.5, 1.5, 2.5, 3), [5], rtn(2));
  assert.deepEqual([...codes], [0, 0, 2, 2, 3]);
});

test("rtn with a negative minimum shifts by it: ŵ = q·scale + min", () => {
  const { dequantized, params } = quantizeTensor(Float32Array.of(-1, -0.5, 0.2, 1), [4], rtn(2));
  const step = f(2 / 3);
  assert.equal(params.offset[0], -1);
  // (−0.5 + 1)/step = 0.75 → 1; (0.2 + 1)/step = 1.8 → 2
  assert.deepEqual([...dequantized], [-1, f(step - 1), f(f(2 * step) - 1), f(f(3 * step) - 1)]);
});

test("zscore:K clips to ±(mean + K·std) of |w| over the block, std with Bessel's correction", () => {
  // |w| = 1, 1, 1, 1, 10: mean 2.8, sample variance (4·1.8² + 7.2²)/4 = 16.2
  const w = Float32Array.of(1, -1, 1, -1, 10);
  const { params, dequantized } = quantizeTensor(w, [5], rtn(8, "tensor", { method: "zscore", k: 1 }));
  const t = 2.8 + Math.sqrt(16.2);
  assert.equal(params.lo[0], -1);
  assert.ok(Math.abs(params.hi[0] - t) <= 1e-6 * t, `hi ${params.hi[0]} vs ${t}`);
  assert.ok(Math.abs(dequantized[4] - t) <= 1e-6 * t, "the clipped weight lands on the threshold");
  // K = 3 puts the threshold (2.8 + 3·4.02 = 14.9) above every weight: nothing clipped
  assert.equal(quantizeTensor(w, [5], rtn(8, "tensor", { method: "zscore", k: 3 })).params.hi[0], 10);
});

test("zscore statistics are per block", () => {
  // Two blocks of 5: the first as above (clipped at 6.82), the second all ones (threshold 1, nothing clipped)
  const w = Float32Array.of(1, -1, 1, -1, 10, 1, 1, 1, 1, 1);
  const { params } = quantizeTensor(w, [10], rtn(8, 5, { method: "zscore", k: 1 }));
  assert.ok(Math.abs(params.hi[0] - 6.8249224) < 1e-5);
  assert.deepEqual([params.lo[1], params.hi[1], params.scale[1]], [1, 1, 0]);
});

test("block-pct:F clips at the k-th largest |w| of the block, k = ⌊n·F + 1⌋", () => {
  const w = Float32Array.of(1, -2, 3, -4, 5, -6, 7, -8, 9, -10);
  // k = ⌊10·0.2 + 1⌋ = 3: the third largest |w| is 8
  const { params } = quantizeTensor(w, [10], rtn(4, "tensor", { method: "block-pct", fraction: 0.2 }));
  assert.deepEqual([params.lo[0], params.hi[0]], [-8, 8]);
  // F = 0: k = 1, the largest |w|: no clipping, as the paper's code does for small blocks
  const p0 = quantizeTensor(w, [10], rtn(4, "tensor", { method: "block-pct", fraction: 0 })).params;
  assert.deepEqual([p0.lo[0], p0.hi[0]], [-10, 9]);
  // per block of 5: k = ⌊5·0.2 + 1⌋ = 2 → 4 in the first block, 9 in the second
  const p5 = quantizeTensor(w, [10], rtn(4, 5, { method: "block-pct", fraction: 0.2 })).params;
  assert.deepEqual([p5.lo[0], p5.hi[0], p5.lo[1], p5.hi[1]], [-4, 4, -9, 9]);
});

test("tensor-pct:F clips every block at the k-th largest |w| of the tensor, k = ⌊n·F⌋", () => {
  const w = Float32Array.of(1, -2, 3, -4, 5, -6, 7, -8, 9, -10);
  // k = ⌊10·0.2⌋ = 2: T = 9; the first block [1..5] is untouched, the second loses −10
  const { params } = quantizeTensor(w, [10], rtn(4, 5, { method: "tensor-pct", fraction: 0.2 }));
  assert.deepEqual([params.lo[0], params.hi[0], params.lo[1], params.hi[1]], [-4, 5, -9, 9]);
});

test("held-out weights take no part in min/max or clipping statistics and come back exactly", () => {
  const w = Float32Array.of(1, -2, 3, -4, 5, 100, -6, 7, -8, 9, -10);
  const keep = [5];
  // n = 10 weights not held out: k = 3 → T = 8, as without the 100
  const q = quantizeTensor(w, [11], rtn(4, "tensor", { method: "block-pct", fraction: 0.2 }), keep);
  assert.deepEqual([q.params.lo[0], q.params.hi[0]], [-8, 8]);
  assert.equal(q.dequantized[5], 100);
  // zscore with the 100 held out: mean and std of the other ten only (mean 5.5, std 3.0277) → T = 8.53
  const z = quantizeTensor(w, [11], rtn(8, "tensor", { method: "zscore", k: 1 }), keep);
  assert.ok(Math.abs(z.params.hi[0] - (5.5 + Math.sqrt(82.5 / 9))) < 1e-5, `${z.params.hi[0]}`);
  // tensor-pct: n = 10 → k = 2, T = 9
  const t = quantizeTensor(w, [11], rtn(4, "tensor", { method: "tensor-pct", fraction: 0.2 }), keep);
  assert.deepEqual([t.params.lo[0], t.params.hi[0]], [-9, 9]);
  // no clipping: the range is that of the others
  const n = quantizeTensor(w, [11], rtn(3), keep);
  assert.deepEqual([n.params.lo[0], n.params.hi[0]], [-10, 9]);
  assert.equal(n.dequantized[5], 100);
});

// ---- NF4 ----

/** QLoRA's NF4 table (arXiv 2305.14314, Appendix E; bitsandbytes' float32 values). */
const PUBLISHED_NF4 = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

test("NF4 levels are QLoRA's published table", () => {
  assert.deepEqual([...NF4_LEVELS], PUBLISHED_NF4.map(f));
});

test("nearestNf4 agrees with a brute-force argmin over all 16 levels (first index on ties)", () => {
  const brute = (x: number) => {
    let best = 0;
    for (let i = 1; i < 16; i++) if (Math.abs(f(x - NF4_LEVELS[i])) < Math.abs(f(x - NF4_LEVELS[best]))) best = i;
    return best;
  };
  for (let i = 0; i < 16; i++) assert.equal(nearestNf4(NF4_LEVELS[i]), i);
  // an exact tie: halfway between 0 and 0.0795803 (halving is exact) goes to the lower level
  assert.equal(nearestNf4(NF4_LEVELS[8] / 2), 7);
  for (let i = 0; i < 15; i++) {
    const mid = f((NF4_LEVELS[i] + NF4_LEVELS[i + 1]) / 2);
    for (const x of [mid, f(mid - 1e-7), f(mid + 1e-7)]) assert.equal(nearestNf4(x), brute(x), `x = ${x}`);
  }
  for (let k = 0; k <= 20000; k++) {
    const x = f(-1 + k / 10000);
    assert.equal(nearestNf4(x), brute(x), `x = ${x}`);
  }
});

test("nf4 absmax (QLoRA): x = w / max|w|, nearest level, ŵ = level·max|w|", () => {
  const w = Float32Array.of(-2, -1, 0, 0.5, 1, 2);
  const { codes, dequantized, params } = quantizeTensor(w, [6], nf4());
  // x = −1, −0.5, 0, 0.25, 0.5, 1 → levels 0, 2 (−0.525), 7 (0), 10 (0.246), 12 (0.441), 15
  assert.deepEqual([...codes], [0, 2, 7, 10, 12, 15]);
  assert.deepEqual([params.scale[0], params.offset[0]], [2, 0]);
  assert.deepEqual(
    [...dequantized],
    [0, 2, 7, 10, 12, 15].map((q) => f(NF4_LEVELS[q] * 2)),
  );
});

test("nf4 minmax (the paper's code): [min, max] mapped onto [−1, 1]", () => {
  const w = Float32Array.of(0, 1, 2, 4);
  const { codes, dequantized, params } = quantizeTensor(w, [4], nf4("tensor", "minmax"));
  assert.deepEqual([params.scale[0], params.offset[0]], [2, 2]);
  // x = −1, −0.5, 0, 1 → 0, 2, 7, 15
  assert.deepEqual([...codes], [0, 2, 7, 15]);
  assert.deepEqual([...dequantized], [0, f(f(NF4_LEVELS[2] * 2) + 2), 2, 4]);
});

// ---- round trips ----

const SHAPE = [7, 13]; // 91 elements: blocks of 10 straddle rows and leave a last block of 1
const BLOCKS: Block[] = ["tensor", "channel", 10, 91, 500, 1];

/** Elements per block of SHAPE, by the definition (not the code's geometry). */
const lengthOf = (block: Block) => (block === "tensor" ? 91 : block === "channel" ? 13 : Math.min(block, 91));
const blockOf = (block: Block, i: number) => Math.floor(i / lengthOf(block));
/** The widest gap between adjacent NF4 levels (−1 to −0.696): an element is within half of it (times the scale). */
const NF4_GAP = Math.max(...PUBLISHED_NF4.slice(1).map((l, i) => l - PUBLISHED_NF4[i]));

for (const scheme of [...([8, 4, 3, 2] as Bits[]).map((b) => rtn(b)), nf4(), nf4("tensor", "minmax")]) {
  for (const block of BLOCKS) {
    const label = `${scheme.kind === "rtn" ? `rtn${scheme.bits}` : `nf4 ${scheme.range}`} block ${block}`;
    test(`${label}: every weight within half a step of its block, held-out weights exact, codes round-trip`, () => {
      const s = { ...scheme, block };
      const w = weights(91, 7);
      const keep = [0, 12, 13, 50, 90];
      w[12] = 3.5; // a super weight at the end of a row
      w[50] = -2.25;
      const q = quantizeTensor(w, SHAPE, s, keep);
      // the block's own range, computed here from its weights that are not held out
      const lo = new Map<number, number>(),
        hi = new Map<number, number>();
      for (let i = 0; i < 91; i++) {
        if (keep.includes(i)) continue;
        const b = blockOf(block, i);
        lo.set(b, Math.min(lo.get(b) ?? Infinity, w[i]));
        hi.set(b, Math.max(hi.get(b) ?? -Infinity, w[i]));
      }
      assert.equal(q.params.scale.length, Math.ceil(91 / lengthOf(block)));
      for (let i = 0; i < 91; i++) {
        if (keep.includes(i)) {
          assert.ok(Object.is(q.dequantized[i], w[i]), `held-out ${i}`);
          continue;
        }
        const b = blockOf(block, i);
        const range = hi.get(b)! - lo.get(b)!;
        // rtn: half a step; nf4: half the widest gap between levels (1 − 0.723) times the level scale
        const bound =
          s.kind === "rtn"
            ? range / (2 ** s.bits - 1) / 2
            : (NF4_GAP / 2) * (s.range === "absmax" ? Math.max(-lo.get(b)!, hi.get(b)!) : range / 2);
        const slack = 2 ** -21 * Math.max(Math.abs(lo.get(b)!), Math.abs(hi.get(b)!));
        const err = Math.abs(q.dequantized[i] - w[i]);
        assert.ok(err <= bound + slack, `element ${i} (block ${b}): |ŵ − w| = ${err} > ${bound}`);
      }
      // decoding the codes again from the stored parameters gives the same values
      const again = new Float32Array(91);
      decode(again, q.codes, 0, 91, levelTable(s), q.params.blockLength, q.params.scale, q.params.offset);
      for (let i = 0; i < 91; i++) if (!keep.includes(i)) assert.ok(Object.is(again[i], q.dequantized[i]));
    });
  }
}

test("statistics fed in pieces of any length equal those of the whole tensor", () => {
  const w = weights(91, 3);
  const keep = [4, 5, 30, 89];
  for (const s of [
    rtn(4, 10, { method: "zscore", k: 2 }),
    rtn(3, "channel", { method: "block-pct", fraction: 0.1 }),
    rtn(2, "tensor", { method: "tensor-pct", fraction: 0.05 }),
    nf4(7, "minmax", { method: "zscore", k: 1.5 }),
  ]) {
    const whole = quantizeTensor(w, SHAPE, s, keep).params;
    for (const piece of [1, 3, 13, 17, 90]) {
      const stats = new BlockStatistics(s, SHAPE, keep);
      for (let i = 0; i < 91; i += piece) stats.add(w.subarray(i, Math.min(91, i + piece)));
      const p = stats.finish();
      for (const k of ["scale", "offset", "lo", "hi"] as const)
        assert.deepEqual(p[k], whole[k], `${formatClip(s.clip)} piece ${piece} ${k}`);
      // and codes encoded piece by piece equal the whole
      const codes = new Uint8Array(91);
      for (let i = 0; i < 91; i += piece) encode(codes.subarray(i, i + piece), w.subarray(i, i + piece), i, s, p);
      assert.deepEqual(codes, quantizeTensor(w, SHAPE, s, keep).codes);
    }
  }
});

test("zscore moments are the same, to the last bit of float64, however the stream is cut", () => {
  const w = weights(997, 11);
  const whole = new AbsMoments();
  whole.addAbs(w, 0, w.length);
  for (const piece of [1, 2, 7, 64, 500]) {
    const m = new AbsMoments();
    for (let i = 0; i < w.length; i += piece) m.addAbs(w, i, Math.min(w.length, i + piece));
    for (const k of [0, 1, 9]) assert.ok(Object.is(m.value(k), whole.value(k)), `piece ${piece}, K ${k}`);
  }
  // and the value is mean + K·std of |w| with Bessel's correction
  const a = Array.from(w, Math.abs),
    mean = a.reduce((x, y) => x + y) / a.length;
  const std = Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / (a.length - 1));
  assert.ok(Math.abs(whole.value(3) - (mean + 3 * std)) < 1e-15);
});

test("decodePacked equals unpack + decode bit for bit: every width, start, block length and NF4", () => {
  for (const scheme of [rtn(8), rtn(4), rtn(3), rtn(2), nf4()]) {
    const bits = scheme.kind === "rtn" ? scheme.bits : 4;
    const levels = levelTable(scheme);
    const n = 700;
    const codes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + (i >> 3)) % levels.length);
    const bytes = pack(codes, bits);
    for (const blockLength of [1, 5, 16, 300, 1000]) {
      const blocks = Math.ceil(n / blockLength);
      const scale = Float32Array.from({ length: blocks }, (_, b) => 0.013 * (b + 1) + (b === 2 ? 0 : 1e-3));
      const offset = Float32Array.from({ length: blocks }, (_, b) => -0.5 + 0.07 * b);
      if (blocks > 2) scale[2] = 0; // a degenerate block decodes to its offset
      for (const [first, count] of [
        [0, n],
        [1, 299],
        [3, 8],
        [17, 600],
        [299, 2],
        [699, 1],
      ]) {
        const b0 = Math.floor(first / blockLength);
        const byte0 = (first * bits) >> 3;
        const slice = bytes.subarray(byte0);
        const expected = new Float32Array(count);
        const c = unpack(new Uint8Array(count), slice, first * bits - byte0 * 8, count, bits);
        decode(expected, c, first, count, levels, blockLength, scale.subarray(b0), offset.subarray(b0), b0);
        const got = new Float32Array(count);
        decodePacked(
          got,
          slice,
          first * bits - byte0 * 8,
          bits,
          first,
          count,
          levels,
          blockLength,
          scale.subarray(b0),
          offset.subarray(b0),
          b0,
        );
        assert.deepEqual(got, expected, `${bits} bits, block ${blockLength}, [${first}, ${first + count})`);
      }
    }
  }
});

test("a block's parameters are final as soon as its last value arrives, except under tensor-pct clipping", () => {
  const w = weights(91, 5);
  for (const clip of [none, { method: "zscore", k: 2 }, { method: "block-pct", fraction: 0.1 }] as Clip[]) {
    const s = rtn(4, 10, clip);
    const final = quantizeTensor(w, SHAPE, s, [15]).params;
    const stats = new BlockStatistics(s, SHAPE, [15]);
    stats.add(w.subarray(0, 25));
    assert.equal(stats.ready(), 2, formatClip(clip));
    for (const k of ["scale", "offset", "lo", "hi"] as const)
      assert.deepEqual(stats.params[k].subarray(0, 2), final[k].subarray(0, 2), `${formatClip(clip)} ${k}`);
  }
  const stats = new BlockStatistics(rtn(4, 10, { method: "tensor-pct", fraction: 0.1 }), SHAPE);
  stats.add(w.subarray(0, 25));
  assert.equal(stats.ready(), 0);
});

// ---- degenerate blocks ----

test("degenerate blocks decode to their value, never NaN: all equal, all held out, single element, all zero", () => {
  // blocks of 3: [2, 2, 2] | [5, held, held] | [held, held, held] | [0, 0, 0] | [7]
  const w = Float32Array.of(2, 2, 2, 5, 9, 8, 1, 2, 3, 0, 0, 0, 7);
  const keep = [4, 5, 6, 7, 8];
  for (const s of [rtn(8, 3), rtn(2, 3), nf4(3), nf4(3, "minmax")]) {
    const q = quantizeTensor(w, [13], s, keep);
    assert.deepEqual([...q.dequantized], [...w], `${s.kind}`);
    // a scale of 0 marks a degenerate block, except nf4 absmax whose scale is max |w|
    const absmax = s.kind === "nf4" && s.range === "absmax";
    assert.deepEqual([...q.params.scale], absmax ? [2, 5, 0, 0, 7] : [0, 0, 0, 0, 0]);
  }
  const empty = quantizeTensor(new Float32Array(0), [0, 4], rtn(4, "channel"));
  assert.equal(empty.params.scale.length, 0);
});

// ---- errors ----

test("weights that are not finite, or a range float32 cannot hold, are QuantizeErrors naming the element", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const w = Float32Array.of(1, 2, bad, 4);
    assert.throws(
      () => quantizeTensor(w, [4], rtn(4)),
      (e: unknown) => e instanceof QuantizeError && e.code === "NON_FINITE" && e.message.includes("element 2"),
    );
    // a held-out weight must be finite too
    assert.throws(() => quantizeTensor(w, [4], rtn(4), [2]), QuantizeError);
  }
  assert.throws(
    () => quantizeTensor(Float32Array.of(-3e38, 3e38), [2], rtn(4)),
    (e: unknown) => e instanceof QuantizeError && e.code === "RANGE_OVERFLOW",
  );
});

test("held-out indices must increase strictly inside the tensor; values must cover it exactly", () => {
  const w = weights(10);
  for (const keep of [[3, 3], [5, 2], [-1], [10], [1.5]])
    assert.throws(() => quantizeTensor(w, [10], rtn(4), keep), RangeError, `${keep}`);
  const stats = new BlockStatistics(rtn(4), [10]);
  stats.add(w.subarray(0, 6));
  assert.throws(() => stats.finish(), RangeError);
  assert.throws(() => stats.add(new Float32Array(5)), RangeError);
});

test("block sizes: positive integers, tensor or channel; a block larger than the tensor is the tensor", () => {
  assert.equal(parseBlock("128"), 128);
  assert.equal(parseBlock("tensor"), "tensor");
  assert.equal(parseBlock("channel"), "channel");
  assert.equal(parseBlock("4K"), 4096);
  assert.equal(parseBlock("256K"), 262144);
  assert.equal(parseBlock("1M"), 1048576);
  for (const b of [128, 4096, 65536, 1048576, 3072, 100, "tensor", "channel"] as Block[])
    assert.equal(parseBlock(formatBlock(b)), b);
  assert.equal(formatBlock(65536), "64K");
  for (const bad of ["0", "-4", "1.5", "", "rows", "1e3", "0K", "4k", "K", "4KB", "-1M"])
    assert.throws(() => parseBlock(bad), UserError, bad);
  assert.throws(() => geometry(0, [4, 4]), RangeError);
  assert.throws(() => geometry(-2, [4, 4]), RangeError);
  assert.deepEqual(geometry(1000, [4, 4]), { elements: 16, blockLength: 16, blocks: 1 });
  assert.deepEqual(geometry(5, [4, 4]), { elements: 16, blockLength: 5, blocks: 4 });
  assert.deepEqual(geometry("channel", [3, 2, 5]), { elements: 30, blockLength: 5, blocks: 6 });
  assert.deepEqual(geometry("tensor", [3, 2, 5]), { elements: 30, blockLength: 30, blocks: 1 });
});

test("clip spellings: none, zscore:K (K > 0), block-pct:F and tensor-pct:F (0 ≤ F < 1)", () => {
  assert.deepEqual(parseClip("none"), { method: "none" });
  assert.deepEqual(parseClip("zscore:9"), { method: "zscore", k: 9 });
  assert.deepEqual(parseClip("block-pct:1e-5"), { method: "block-pct", fraction: 1e-5 });
  assert.deepEqual(parseClip("tensor-pct:0"), { method: "tensor-pct", fraction: 0 });
  for (const good of ["none", "zscore:2.5", "block-pct:0.001", "tensor-pct:1e-6"])
    assert.deepEqual(parseClip(formatClip(parseClip(good))), parseClip(good));
  for (const bad of ["zscore:0", "zscore:-1", "zscore:x", "zscore", "block-pct:1", "tensor-pct:-0.1", "iqr:1.5", ""])
    assert.throws(() => parseClip(bad), UserError, bad);
});

// ---- activations ----

test("fakeQuantizeActivations: per-tensor min–max RTN in place; the held-out super activation is untouched", () => {
  const x = Float32Array.of(0, 1, 2, 3, 100);
  const held = x.slice();
  fakeQuantizeActivations(held, 2, [4]);
  // without the 100 the range is 0..3 at 2 bits: step 1, exact
  assert.deepEqual([...held], [0, 1, 2, 3, 100]);
  const plain = x.slice();
  fakeQuantizeActivations(plain, 2);
  // with it: step 100/3 swallows the small ones
  assert.deepEqual([...plain], [0, 0, 0, 0, 100]);
});

test("fakeQuantizeActivations at 8, 6, 4 bits: within half a step; all equal or all held out: unchanged", () => {
  for (const bits of [8, 6, 4]) {
    const x = weights(300, bits);
    x[17] = 40;
    const y = x.slice();
    fakeQuantizeActivations(y, bits, [17]);
    let lo = Infinity,
      hi = -Infinity;
    x.forEach((v, i) => i !== 17 && ((lo = Math.min(lo, v)), (hi = Math.max(hi, v))));
    const half = (hi - lo) / (2 ** bits - 1) / 2;
    const slack = 2 ** -21 * Math.max(-lo, hi);
    x.forEach((v, i) => assert.ok(Math.abs(y[i] - v) <= half + slack, `${bits} bits, element ${i}`));
    assert.equal(y[17], 40);
  }
  const same = new Float32Array(5).fill(1.25);
  fakeQuantizeActivations(same, 4);
  assert.deepEqual([...same], [1.25, 1.25, 1.25, 1.25, 1.25]);
  const two = Float32Array.of(3, 4);
  fakeQuantizeActivations(two, 4, [0, 1]);
  assert.deepEqual([...two], [3, 4]);
});

test("fakeQuantizeActivations refuses bad bits, held-out positions outside the tensor and non-finite values", () => {
  assert.throws(() => fakeQuantizeActivations(new Float32Array(4), 1), RangeError);
  assert.throws(() => fakeQuantizeActivations(new Float32Array(4), 4.5), RangeError);
  assert.throws(() => fakeQuantizeActivations(new Float32Array(4), 8, [4]), RangeError);
  assert.throws(() => fakeQuantizeActivations(Float32Array.of(1, NaN), 8), QuantizeError);
});
