// A worker lane of the engine's streamed products (lanes.ts): its own one-thread GEMM and block buffer. It says
// it is ready in the shared state (or unusable, when onnxruntime does not load here), then runs each job it is
// sent (workerJob in lane.ts, where the job's code lives and is tested on the main thread).
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { createOrtBackend } from "./matmul.js";
import { WORKER, workerJob, type Gemm, type LaneMessage, type WorkerLane } from "./lane.js";

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

const lane: WorkerLane = { index, x: new Float32Array(0), out: new Float32Array(0), local: new Float32Array(0) };
port.on("message", (msg: LaneMessage) => workerJob(lane, msg, ctrl, gemm!, (f) => port.postMessage(f)));
