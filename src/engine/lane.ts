// One lane of the engine's streamed products (lanes.ts), the same code on the main thread and in each worker:
// take row blocks of a stored matrix from a shared counter, read each from the file into this thread's block
// buffer, widen it there while it is still in cache, multiply it with one GEMM thread, and write the block's
// columns of the shared output.
import { blockBuffer } from "../checkpoint/block-buffer.js";
import { DTYPE_BYTES, widenInPlace, type FloatDtype } from "../checkpoint/dtype.js";
import { readExactly } from "../checkpoint/safetensors.js";
import { CheckpointError } from "../errors.js";

/** Rows [r0, r1) of a stored [rows, cols] matrix of a safetensors file, multiplied by x[m, cols]. */
export interface RowsJob {
  /** An open descriptor of the file (descriptors are the process's: every thread reads through it). */
  fd: number;
  path: string;
  /** Byte offset of the matrix's element 0 in the file. */
  start: number;
  dtype: FloatDtype;
  cols: number;
  r0: number;
  r1: number;
  /** Rows per block. */
  step: number;
  m: number;
}

/** y[m, n] = x[m, k] · w[n, k]ᵀ, on one thread. */
export type Gemm = (x: Float32Array, m: number, k: number, w: Float32Array, n: number) => Promise<Float32Array>;

/** A worker lane's error as it crosses to the main thread (a CheckpointError keeps its file and code). */
export type LaneFailure = { file: string; detail: string; code: string } | { message: string };

export function laneFailure(e: unknown): LaneFailure {
  if (e instanceof CheckpointError) return { file: e.file!, detail: e.message.slice(e.file!.length + 2), code: e.code };
  return { message: e instanceof Error ? e.message : String(e) };
}

export function rebuildFailure(f: LaneFailure): Error {
  return "code" in f ? new CheckpointError(f.file, f.detail, f.code) : new Error(`engine lane: ${f.message}`);
}

/** Slots of the lanes' shared Int32Array: the next block to take, lanes done, a lane failed; then per worker
 * i, at WORKER + 2i its state (0 starting, 1 ready, −1 unusable) and at WORKER + 2i + 1 the blocks it made. */
export const NEXT = 0,
  DONE = 1,
  FAILED = 2,
  WORKER = 3;

/** Blocks of the job until none is left: out[m, r1 − r0] gets x · W[r0:r1]ᵀ. Returns how many it made. */
export async function runLane(
  job: RowsJob,
  x: Float32Array,
  out: Float32Array,
  ctrl: Int32Array,
  gemm: Gemm,
): Promise<number> {
  const { fd, path, start, dtype, cols, r0, r1, step, m } = job;
  const width = DTYPE_BYTES[dtype],
    n = r1 - r0,
    blocks = Math.ceil(n / step);
  let made = 0;
  for (let b = Atomics.add(ctrl, NEXT, 1); b < blocks; b = Atomics.add(ctrl, NEXT, 1), made++) {
    const a = r0 + b * step,
      rows = Math.min(r1, a + step) - a,
      count = rows * cols;
    const w = blockBuffer(count);
    readExactly(fd, new Uint8Array(w.buffer, w.byteOffset, count * width), start + a * cols * width, path);
    widenInPlace(w, count, dtype);
    const part = await gemm(x, m, cols, w, rows); // [m, rows]
    for (let i = 0; i < m; i++) out.set(part.subarray(i * rows, (i + 1) * rows), i * n + a - r0);
  }
  return made;
}

/** A worker lane between jobs: its index, the shared buffers it was last sent, and its own copy of x. */
export interface WorkerLane {
  index: number;
  x: Float32Array;
  out: Float32Array;
  local: Float32Array;
}

/** A job as the main thread sends it to a worker lane, with the shared buffers when they changed. */
export interface LaneMessage {
  job: RowsJob;
  x?: SharedArrayBuffer;
  out?: SharedArrayBuffer;
}

/**
 * One job in a worker lane: its blocks on the shared counter beside the other lanes, counted as this worker's; a
 * failure stops the other lanes taking blocks and is posted to the main thread before the lane counts itself done.
 */
export async function workerJob(
  lane: WorkerLane,
  msg: LaneMessage,
  ctrl: Int32Array,
  gemm: Gemm,
  post: (f: LaneFailure) => void,
): Promise<void> {
  try {
    if (msg.x) lane.x = new Float32Array(msg.x);
    if (msg.out) lane.out = new Float32Array(msg.out);
    const { m, cols } = msg.job;
    // onnxruntime takes no views of shared memory: x is copied into this thread's own.
    if (lane.local.length < m * cols) lane.local = new Float32Array(m * cols);
    const own = lane.local.subarray(0, m * cols);
    own.set(lane.x.subarray(0, m * cols));
    Atomics.add(ctrl, WORKER + 2 * lane.index + 1, await runLane(msg.job, own, lane.out, ctrl, gemm));
  } catch (e) {
    Atomics.store(ctrl, NEXT, 1 << 30);
    post(laneFailure(e));
    Atomics.store(ctrl, FAILED, 1);
  } finally {
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  }
}
