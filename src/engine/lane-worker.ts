// A worker lane of the engine's streamed products (lanes.ts): its own one-thread GEMM and block buffer. It says
// it is ready in the shared state (or unusable, when onnxruntime does not load here), then runs each job it is
// sent on the shared counter beside the other lanes, and reports a failure as a message before it counts itself
// done.
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { createOrtBackend } from "./matmul.js";
import { DONE, FAILED, laneFailure, NEXT, WORKER, runLane, type Gemm, type RowsJob } from "./lane.js";

const { state, index, port } = workerData as { state: SharedArrayBuffer; index: number; port: MessagePort };
const ctrl = new Int32Array(state);

let gemm: Gemm | undefined;
try {
  const backend = await createOrtBackend(1);
  gemm = (x, m, k, w, n) => backend.linear(x, m, k, w, n, "nk");
  Atomics.store(ctrl, WORKER + 2 * index, 1);
} catch {
  Atomics.store(ctrl, WORKER + 2 * index, -1); // the main thread's lane does the work
}
parentPort!.postMessage("started");

let x: Float32Array = new Float32Array(0),
  out: Float32Array = new Float32Array(0),
  local = new Float32Array(0);
port.on("message", async (msg: { job: RowsJob; x?: SharedArrayBuffer; out?: SharedArrayBuffer }) => {
  try {
    if (msg.x) x = new Float32Array(msg.x);
    if (msg.out) out = new Float32Array(msg.out);
    const { m, cols } = msg.job;
    // onnxruntime takes no views of shared memory: x is copied into this thread's own.
    if (local.length < m * cols) local = new Float32Array(m * cols);
    const own = local.subarray(0, m * cols);
    own.set(x.subarray(0, m * cols));
    Atomics.add(ctrl, WORKER + 2 * index + 1, await runLane(msg.job, own, out, ctrl, gemm!));
  } catch (e) {
    Atomics.store(ctrl, NEXT, 1 << 30); // the other lanes stop taking blocks
    port.postMessage(laneFailure(e));
    Atomics.store(ctrl, FAILED, 1);
  } finally {
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  }
});
