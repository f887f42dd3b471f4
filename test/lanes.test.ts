// The engine's lanes (src/engine/lanes.ts): products of stored F32/F16/BF16 matrices shared out between the main
// thread and a worker thread, against the plain TypeScript reference on the same stored values; a file that
// fails under the lanes fails the product with the reader's error; and the SIMD widening kernels every lane uses
// are exact for all 65536 patterns.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FloatDtype } from "../src/checkpoint/dtype.js";
import type { Lanes as LanesType } from "../src/engine/lanes.js";
import { CheckpointError } from "../src/errors.js";
import { seeded } from "./reference-forward.js";
import { toleranceUsed } from "./tolerance.js";

// Blocks of 64k elements (fixed at module load, so set before the engine is imported; the worker inherits it).
process.env.SUPERWEIGHT_BLOCK_ELEMENTS = "65536";
const { blockBuffer, widenSimd } = await import("../src/checkpoint/block-buffer.js");
const { widenInPlace } = await import("../src/checkpoint/dtype.js");
const { fdFor, openSafetensors, readTensorRange } = await import("../src/checkpoint/safetensors.js");
const { writeSafetensors } = await import("../src/checkpoint/writer.js");
const { Lanes } = await import("../src/engine/lanes.js");
const { laneFailure, rebuildFailure } = await import("../src/engine/lane.js");
const { matmulRef } = await import("../src/engine/matmul.js");

const dir = mkdtempSync(join(tmpdir(), "sw-lanes-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// 3000 rows of 700: 93 rows per block, 33 blocks.
const ROWS = 3000,
  COLS = 700,
  M = 5;

/** A one-tensor safetensors file of a [ROWS, COLS] matrix: the lanes' job for it, and the values it stores. */
function matrix(dtype: FloatDtype, seed: number) {
  const path = join(dir, `w-${dtype}-${seed}.safetensors`);
  writeSafetensors(path, [{ name: "w", dtype, shape: [ROWS, COLS], data: seeded(seed)(ROWS * COLS, 0.5) }]);
  const file = openSafetensors(path);
  const t = file.tensors.get("w")!;
  const stored = readTensorRange(file, t, 0, ROWS * COLS, new Float32Array(ROWS * COLS)); // plain-array widening
  return { path, stored, job: { fd: fdFor(path), path, start: t.start, dtype, cols: COLS, r0: 0, r1: ROWS } };
}

let lanes: LanesType;
before(async () => {
  lanes = await Lanes.create(2);
  lanes.startWorkers();
  for (let waited = 0; lanes.ready < 1 && waited < 20000; waited += 20) await new Promise((r) => setTimeout(r, 20));
});

const x = seeded(99)(M * COLS, 1);

for (const dtype of ["F32", "F16", "BF16"] as const) {
  test(`${dtype}: x · Wᵀ on two lanes is the reference product of the stored values, each block in place`, () => {
    assert.equal(lanes.ready, 1, "the worker lane started");
    const { stored, job } = matrix(dtype, dtype.length);
    assert.ok(ROWS / Lanes.step(COLS, M) > 8, "many blocks to share out");
    return (async () => {
      const want = new Float32Array(M * ROWS);
      matmulRef(want, x, M, COLS, stored, ROWS, "nk");
      const before = lanes.workerBlocks;
      const got = await lanes.product(job, x, M);
      assert.ok(toleranceUsed(got, Array.from(want)) <= 1, "the full product");
      // Which lane takes which block is the scheduler's: on a busy machine the main thread may take all of one
      // product's blocks before the worker wakes. Over a few products the worker must take some.
      for (let tries = 0; lanes.workerBlocks === before && tries < 20; tries++) {
        const again = await lanes.product(job, x, M);
        assert.ok(toleranceUsed(again, Array.from(want)) <= 1, "the full product again");
      }
      assert.ok(lanes.workerBlocks > before, "the worker took blocks");
      // A row range inside the matrix (the LM head's parts): columns r0..r1 of the product.
      const [r0, r1] = [1234, 2345];
      const part = await lanes.product({ ...job, r0, r1 }, x, M);
      const wantPart = new Float32Array(M * (r1 - r0));
      for (let i = 0; i < M; i++) wantPart.set(want.subarray(i * ROWS + r0, i * ROWS + r1), i * (r1 - r0));
      assert.ok(toleranceUsed(part, Array.from(wantPart)) <= 1, "rows 1234..2345");
    })();
  });
}

test("products awaited side by side queue: each is its own matrix's product", async () => {
  const a = matrix("BF16", 11),
    b = matrix("F16", 12);
  const [ga, gb] = await Promise.all(
    [lanes.product(a.job, x, M), lanes.product(b.job, x, M)].map((p) => p.then((y) => y.slice())),
  );
  for (const [got, { stored }] of [
    [ga, a],
    [gb, b],
  ] as const) {
    const want = new Float32Array(M * ROWS);
    matmulRef(want, x, M, COLS, stored, ROWS, "nk");
    assert.ok(toleranceUsed(got, Array.from(want)) <= 1);
  }
});

test("a file cut short under the lanes fails the product with the reader's TRUNCATED error", async () => {
  const { path, job } = matrix("BF16", 7);
  truncateSync(path, job.start + 2 * COLS * 10); // ten rows left: every later block is past the end
  await assert.rejects(lanes.product(job, x, M), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `a CheckpointError, got ${e}`);
    assert.equal(e.code, "TRUNCATED");
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    return true;
  });
  // The main thread alone meets the same error itself.
  const solo = await Lanes.create(1);
  await assert.rejects(solo.product(job, x, M), { name: "CheckpointError", code: "TRUNCATED" });
  // The lanes work on after a failure.
  const ok = matrix("BF16", 8);
  const want = new Float32Array(M * ROWS);
  matmulRef(want, x, M, COLS, ok.stored, ROWS, "nk");
  assert.ok(toleranceUsed(await lanes.product(ok.job, x, M), Array.from(want)) <= 1);
});

test("a worker lane's error reaches the main thread as the same error (a CheckpointError keeps its code)", () => {
  const e = new CheckpointError("/m/model.safetensors", "unexpected end of file at byte 9 (truncated?)", "TRUNCATED");
  const back = rebuildFailure(structuredClone(laneFailure(e)));
  assert.ok(back instanceof CheckpointError);
  assert.equal(back.message, e.message);
  assert.equal(back.code, "TRUNCATED");
  assert.equal(back.file, e.file);
  assert.equal(rebuildFailure(structuredClone(laneFailure(new RangeError("bad")))).message, "engine lane: bad");
});

test("SIMD widening in the block buffer: every F16 and BF16 pattern, bit for bit the plain conversion", () => {
  for (const dtype of ["F16", "BF16"] as const) {
    const simd = blockBuffer(65536),
      plain = new Float32Array(65536);
    for (const out of [simd, plain])
      new Uint16Array(out.buffer, out.byteOffset, 65536).forEach((_, h, r) => (r[h] = h));
    assert.equal(widenSimd(simd, 65536, dtype), true, "the arena's kernel ran");
    widenInPlace(plain, 65536, dtype); // not in the arena: the table / shift
    const a = new Uint32Array(simd.buffer, simd.byteOffset, 65536),
      b = new Uint32Array(plain.buffer);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(plain[h])) assert.ok(Number.isNaN(simd[h]), `${dtype} 0x${h.toString(16)} is NaN`);
      else if (a[h] !== b[h]) assert.fail(`${dtype} 0x${h.toString(16)}: ${a[h]}, expected ${b[h]}`);
    }
  }
  // An odd count: the scalar tail before the 8-wide chunks; subnormal, infinite, signed-zero halves.
  const odd = blockBuffer(13);
  const halves = [0x3c00, 0x8001, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x0400, 0x7bff, 0, 0x8000, 0x3555, 0x4248, 0xc248];
  new Uint16Array(odd.buffer, odd.byteOffset, 13).set(halves);
  widenSimd(odd, 13, "F16");
  const want = [
    1,
    -(2 ** -24),
    Infinity,
    -Infinity,
    2 ** -24,
    1023 * 2 ** -24,
    2 ** -14,
    65504,
    0,
    -0,
    0.333251953125,
    3.140625,
    -3.140625,
  ];
  assert.deepEqual([...odd], want);
});

test("three lanes (two workers, each with its own control slots) give the same product; a one-lane set starts none", async () => {
  const three = await Lanes.create(3);
  three.startWorkers();
  for (let waited = 0; three.ready < 2 && waited < 20000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  assert.equal(three.ready, 2, "both workers started");
  const { stored, job } = matrix("BF16", 21);
  const want = new Float32Array(M * ROWS);
  matmulRef(want, x, M, COLS, stored, ROWS, "nk");
  for (let i = 0; i < 3; i++)
    assert.ok(toleranceUsed(await three.product(job, x, M), Array.from(want)) <= 1, `product ${i}`);
  // A larger product grows the shared buffers: the workers must be sent the new ones, then reuse them.
  const x3 = seeded(98)(3 * M * COLS, 1);
  const want3 = new Float32Array(3 * M * ROWS);
  matmulRef(want3, x3, 3 * M, COLS, stored, ROWS, "nk");
  for (let i = 0; i < 2; i++)
    assert.ok(toleranceUsed(await three.product(job, x3, 3 * M), Array.from(want3)) <= 1, `larger ${i}`);
  assert.ok(
    toleranceUsed(await three.product(job, x, M), Array.from(want)) <= 1,
    "smaller again, in the larger buffers",
  );
  // Started once: the products and a second start made no more workers.
  three.startWorkers();
  assert.equal(three.ready, 2, "still two workers");
  const one = await Lanes.create(1);
  one.startWorkers();
  assert.equal(one.ready, 0);
  assert.ok(toleranceUsed(await one.product(job, x, M), Array.from(want)) <= 1, "the main thread alone");
  assert.equal(one.workerBlocks, 0);
});
