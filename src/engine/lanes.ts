// Streamed weight products on every core. The row blocks of a stored matrix are shared out among lanes — the
// main thread and (threads − 1) worker threads — through one atomic counter; each lane reads a block from the
// file into its own small buffer, widens it there, multiplies it with a one-thread GEMM and writes its columns of
// the output (lane.ts). So reading, widening and multiplying overlap across cores instead of following each other,
// the blocks stay in cache between the three, and no GEMM thread pool waits on a serial read.
// Used for safetensors F32/F16/BF16 weights in [out, in] layout that no override transforms (linear.ts).
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import { MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";
import { createOrtBackend } from "./matmul.js";
import { DONE, FAILED, NEXT, rebuildFailure, WORKER, runLane } from "./lane.js";
import type { Gemm, LaneFailure, RowsJob } from "./lane.js";

/** Elements per lane block: 2 MB of bf16 (4 of float32), within a core's share of the last-level cache between
 * widening and the product; 0.5 and 4 MB blocks measured 2–5% slower here, smaller ones pay the GEMM call's
 * fixed cost more often. */
const LANE_BLOCK_ELEMENTS = Math.min(MAX_BLOCK_ELEMENTS, 1 << 20);

interface LaneWorker {
  port: MessagePort;
  index: number;
  /** Exited (its failure, when it had one, is waiting on the port). */
  gone: boolean;
}

export class Lanes {
  private x: Float32Array = new Float32Array(0);
  private out: Float32Array = new Float32Array(0);
  /** Which workers have been sent the current shared buffers. */
  private sent = new WeakMap<LaneWorker, { x: Float32Array; out: Float32Array }>();

  private workers: LaneWorker[] = [];

  private constructor(
    readonly threads: number,
    private readonly gemm: Gemm,
    private readonly ctrl: Int32Array,
  ) {}

  /** Lanes on `threads` cores: the main thread's now, the workers' once a product has blocks to share. */
  static async create(threads: number): Promise<Lanes> {
    const backend = await createOrtBackend(1);
    const gemm: Gemm = (x, m, k, w, n) => backend.linear(x, m, k, w, n, "nk");
    return new Lanes(threads, gemm, new Int32Array(new SharedArrayBuffer(4 * (WORKER + 2 * (threads - 1)))));
  }

  /** Start the worker lanes (once); they join the products when they are ready. */
  startWorkers(): void {
    if (this.workers.length || this.threads === 1) return;
    const { ctrl } = this;
    for (let index = 0; index < this.threads - 1; index++) {
      const { port1, port2 } = new MessageChannel();
      let worker: Worker;
      try {
        const workerData = { state: ctrl.buffer, index, port: port2 };
        worker = new Worker(new URL("./lane-worker.js", import.meta.url), { workerData, transferList: [port2] });
      } catch {
        Atomics.store(ctrl, WORKER + 2 * index, -1);
        continue;
      }
      const lane: LaneWorker = { port: port1, index, gone: false };
      // A worker that dies mid-job never counts itself done: count it here and fail the job.
      worker.on("error", () => {});
      worker.on("exit", () => {
        lane.gone = true;
        Atomics.store(ctrl, WORKER + 2 * index, -1);
        Atomics.store(ctrl, FAILED, 1);
        Atomics.add(ctrl, DONE, 1);
        Atomics.notify(ctrl, DONE);
      });
      // The process waits for a starting worker (torn down while onnxruntime loads, the process aborts); a
      // ready one, idle between products, does not keep it alive.
      worker.once("message", () => worker.unref());
      this.workers.push(lane);
    }
  }

  /** Rows per block of a matrix with `cols` columns multiplied by m rows (the [m, rows] product bounded too). */
  static step(cols: number, m: number): number {
    // Stryker disable next-line all: equivalent, the block size changes how the rows are shared out, not the product
    const rows = Math.min(Math.floor(LANE_BLOCK_ELEMENTS / cols), Math.floor(MAX_BLOCK_ELEMENTS / Math.max(m, 1)));
    return Math.max(1, rows);
  }

  /** Workers that take part in jobs now. */
  get ready(): number {
    return this.helpers().length;
  }

  /** Blocks the workers have made so far (the rest were the main thread's). */
  get workerBlocks(): number {
    return this.workers.reduce((s, w) => s + Atomics.load(this.ctrl, WORKER + 2 * w.index + 1), 0);
  }

  private helpers(): LaneWorker[] {
    return this.workers.filter((w) => !w.gone && Atomics.load(this.ctrl, WORKER + 2 * w.index) === 1);
  }

  /**
   * x[m, cols] · W[r0:r1]ᵀ as [m, r1 − r0], for the stored matrix of `job`. The result is a view of a shared
   * buffer, valid until the next product. Products run one at a time (two passes awaited side by side queue).
   */
  product(job: Omit<RowsJob, "step" | "m">, x: Float32Array, m: number): Promise<Float32Array> {
    const run = this.queue.then(() => this.run(job, x, m));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private queue: Promise<unknown> = Promise.resolve();

  private async run(job: Omit<RowsJob, "step" | "m">, x: Float32Array, m: number): Promise<Float32Array> {
    const { cols, r0, r1 } = job;
    const full: RowsJob = { ...job, m, step: Lanes.step(cols, m) };
    const n = r1 - r0;
    // Stryker disable next-line all: equivalent, when the workers start changes who computes the blocks, not the product
    if (n > full.step) this.startWorkers();
    // Stryker disable next-line all: equivalent, a product the main thread does alone is the same product
    const helpers = n > full.step ? this.helpers() : [];
    if (helpers.length) this.share(x, m * cols, m * n);
    const out = helpers.length ? this.out.subarray(0, m * n) : new Float32Array(m * n);
    const { ctrl } = this;
    Atomics.store(ctrl, NEXT, 0);
    Atomics.store(ctrl, DONE, 0);
    Atomics.store(ctrl, FAILED, 0);
    for (const w of helpers) {
      const had = this.sent.get(w);
      const x = had?.x === this.x ? undefined : this.x.buffer;
      const out = had?.out === this.out ? undefined : this.out.buffer;
      w.port.postMessage({ job: full, x, out });
      // Stryker disable next-line ObjectLiteral: equivalent, an entry without the buffers only makes the next job send them.
      this.sent.set(w, { x: this.x, out: this.out });
    }
    let failed: unknown;
    try {
      await runLane(full, x, out, ctrl, this.gemm);
    } catch (e) {
      Atomics.store(ctrl, NEXT, 1 << 30);
      failed = e;
    }
    // The others finish their last block (at most one block's time; they need nothing from this thread). Now
    // and then the event loop turns, so that a worker's exit is seen rather than waited on.
    for (let done; (done = Atomics.load(ctrl, DONE)) < helpers.length;)
      if (Atomics.wait(ctrl, DONE, done, 1000) === "timed-out") await new Promise((resolve) => setImmediate(resolve));
    if (failed) throw failed;
    if (Atomics.load(ctrl, FAILED)) throw this.failure(helpers);
    return out;
  }

  /** The shared x and output buffers, grown to hold `xSize` and `outSize` floats, with x copied in. */
  private share(x: Float32Array, xSize: number, outSize: number): void {
    if (this.x.length < xSize) this.x = new Float32Array(new SharedArrayBuffer(4 * xSize));
    if (this.out.length < outSize) this.out = new Float32Array(new SharedArrayBuffer(4 * outSize));
    this.x.set(x.subarray(0, xSize));
  }

  /** The error a worker lane reported (rebuilt), or why it could not report one. */
  private failure(helpers: LaneWorker[]): Error {
    for (const w of helpers) {
      const got = receiveMessageOnPort(w.port)?.message as LaneFailure | undefined;
      if (got) return rebuildFailure(got);
    }
    return new Error("engine lane: a worker thread exited during a product");
  }
}

const made = new Map<number, Promise<Lanes>>();

/** The process's lanes for a thread count (made once). */
export function lanesFor(threads: number): Promise<Lanes> {
  let lanes = made.get(threads);
  if (!lanes) made.set(threads, (lanes = Lanes.create(threads)));
  return lanes;
}
