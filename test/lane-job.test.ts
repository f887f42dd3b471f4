// A worker lane's job, run on the main thread (as a worker runs it, but where a test sees it): rows of a matrix
// stored in a file, taken block by block from the shared counter, multiplied, written to the shared output, and
// counted; a failure stops the other lanes, is posted, and the lane still counts itself done. The products are
// checked against a float64 sum written here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DONE,
  FAILED,
  NEXT,
  WORKER,
  workerJob,
  type Gemm,
  type LaneFailure,
  type WorkerLane,
} from "../src/engine/lane.js";

const ROWS = 6,
  COLS = 4;
const W = Float32Array.from({ length: ROWS * COLS }, (_, i) => ((i * 7) % 11) - 5 + i / 8);

/** y[m, n] = x[m, k] · w[n, k]ᵀ in float64, rounded once. */
const gemm: Gemm = async (x, m, k, w, n) => {
  const y = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += x[i * k + t] * w[j * k + t];
      y[i * n + j] = s;
    }
  return y;
};

function expected(x: Float32Array, m: number, r0: number, r1: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < m; i++)
    for (let r = r0; r < r1; r++) {
      let s = 0;
      for (let t = 0; t < COLS; t++) s += x[i * COLS + t] * W[r * COLS + t];
      out.push(Math.fround(s));
    }
  return out;
}

function withFile(run: (fd: number, path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "sw-lane-"));
  const path = join(dir, "w.bin");
  // 8 bytes before the matrix: the job's start offset is honoured.
  writeFileSync(path, Buffer.concat([Buffer.alloc(8, 0xff), Buffer.from(W.buffer)]));
  const fd = openSync(path, "r");
  return run(fd, path).finally(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
}

// Whether a notify on ctrl[i] wakes a waiter within a second (Atomics.waitAsync, Node 16+, which this project's
// TypeScript lib does not declare yet; the timer keeps the test alive while it waits).
function woken(a: Int32Array, i: number): Promise<string> {
  const wait: Promise<string> = (Atomics as any).waitAsync(a, i, a[i], 1000).value;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((done) => (timer = setTimeout(() => done("not woken"), 1500)));
  return Promise.race([wait, late]).finally(() => clearTimeout(timer));
}
const shared = (n: number) => new Float32Array(new SharedArrayBuffer(4 * n));
const newLane = (index: number): WorkerLane => ({
  index,
  x: new Float32Array(0),
  out: new Float32Array(0),
  local: new Float32Array(0),
});

test("a worker lane's job: its blocks of rows [1, 5), counted as its own, the lane done and the waiter woken", async () => {
  await withFile(async (fd, path) => {
    const ctrl = new Int32Array(new SharedArrayBuffer(4 * (WORKER + 6)));
    const m = 2;
    const x = shared(3 * COLS); // longer than the job needs: only m·cols are used
    x.set([0.5, -1, 2, 3, 1, 0.25, -0.5, 4, 99, 99, 99, 99]);
    const out = shared(m * 4);
    const lane = newLane(2);
    const posted: LaneFailure[] = [];
    const job = { fd, path, start: 8, dtype: "F32" as const, cols: COLS, r0: 1, r1: 5, step: 2, m };
    const wake = woken(ctrl, DONE);
    await workerJob(
      lane,
      { job, x: x.buffer as SharedArrayBuffer, out: out.buffer as SharedArrayBuffer },
      ctrl,
      gemm,
      (f) => posted.push(f),
    );
    assert.equal(await wake, "ok");
    assert.deepEqual([...out], expected(x, m, 1, 5));
    assert.equal(posted.length, 0);
    // Two blocks made, by worker 2 (its slot), none by workers 0 and 1; the counter was taken three times.
    assert.deepEqual([ctrl[NEXT], ctrl[DONE], ctrl[FAILED]], [3, 1, 0]);
    assert.deepEqual([ctrl[WORKER + 1], ctrl[WORKER + 3], ctrl[WORKER + 5]], [0, 0, 2]);
    // The lane keeps the shared buffers it was sent and its own copy of x, of the job's size.
    assert.equal(lane.x.buffer, x.buffer);
    assert.equal(lane.out.buffer, out.buffer);
    assert.equal(lane.local.length, m * COLS);
    assert.notEqual(lane.local.buffer, x.buffer);

    // The next job sends no buffers: the lane uses the ones it has, with x's new values; its own copy grows for
    // a larger m and is kept for a smaller one.
    x.set([1, 2, 3, 4, -4, -3, -2, -1, 0.5, 0.5, 0.5, 0.5]);
    ctrl[NEXT] = 0;
    await workerJob(lane, { job: { ...job, m: 3, r0: 0, r1: 2, step: 1 } }, ctrl, gemm, (f) => posted.push(f));
    const big = shared(3 * COLS);
    big.set(x.subarray(0, 3 * COLS));
    assert.deepEqual([...out.subarray(0, 6)], expected(big, 3, 0, 2));
    assert.equal(lane.local.length, 3 * COLS);
    assert.deepEqual([ctrl[DONE], ctrl[WORKER + 5]], [2, 4]);
    const local = lane.local;
    ctrl[NEXT] = 0;
    await workerJob(lane, { job: { ...job, m: 1, r0: 5, r1: 6, step: 4 } }, ctrl, gemm, (f) => posted.push(f));
    assert.equal(lane.local, local);
    assert.deepEqual([out[0]], expected(x, 1, 5, 6));
    ctrl[NEXT] = 0;
    await workerJob(lane, { job: { ...job, m: 3, r0: 0, r1: 1, step: 1 } }, ctrl, gemm, (f) => posted.push(f));
    assert.equal(lane.local, local, "the same size: kept");
    assert.equal(posted.length, 0);
  });
});

test("a worker lane's failure: the other lanes stop taking blocks, the error is posted with its file and code", async () => {
  await withFile(async (fd, path) => {
    for (const [what, job, g, want] of [
      [
        "a GEMM that throws",
        { fd, path, start: 8, dtype: "F32" as const, cols: COLS, r0: 0, r1: 6, step: 3, m: 1 },
        (async () => {
          throw new Error("no GEMM here");
        }) as Gemm,
        { message: "no GEMM here" },
      ],
      [
        "rows past the file's end",
        { fd, path, start: 8, dtype: "F32" as const, cols: COLS, r0: 4, r1: 8, step: 4, m: 1 },
        gemm,
        "TRUNCATED",
      ],
    ] as const) {
      const ctrl = new Int32Array(new SharedArrayBuffer(4 * (WORKER + 2)));
      const posted: LaneFailure[] = [];
      const wake = woken(ctrl, DONE);
      const x = shared(COLS).fill(1);
      const out = shared(8);
      await workerJob(
        newLane(0),
        { job, x: x.buffer as SharedArrayBuffer, out: out.buffer as SharedArrayBuffer },
        ctrl,
        g,
        (f) => posted.push(f),
      );
      assert.equal(await wake, "ok", what);
      assert.deepEqual([ctrl[NEXT], ctrl[FAILED], ctrl[DONE], ctrl[WORKER + 1]], [1 << 30, 1, 1, 0], what);
      assert.equal(posted.length, 1, what);
      if (typeof want === "string") {
        const f = posted[0] as { file: string; code: string; detail: string };
        assert.deepEqual([f.file, f.code], [path, want], what);
        assert.ok(f.detail.length > 0, what);
      } else assert.deepEqual(posted[0], want, what);
    }
  });
});
