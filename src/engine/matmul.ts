// Matrix products for the engine: onnxruntime-node's CPU GEMM when it loads (at the machine's BLAS
// ceiling, see design.md "Compute"), else plain TypeScript loops. Both work on f32; the caller widens
// bf16/f16 weights first.
import { availableParallelism } from "node:os";
import type { InferenceSession, Tensor } from "onnxruntime-node";
import { batchedModel, linearModel } from "./onnx-model.js";

/** How a weight matrix is stored: "nk" = [out, in] (torch Linear: y = x·Wᵀ), "kn" = [in, out] (GPT-2 Conv1D: y = x·W). */
export type Layout = "nk" | "kn";

export interface MatmulBackend {
  readonly name: string; // "onnxruntime" or "js"
  /** Why onnxruntime-node was not used, when getBackend() fell back to JS without being asked to. */
  readonly fallbackReason?: string;
  /** Cores onnxruntime's products use (the engine's streamed products run one lane per core, lanes.ts). */
  readonly threads?: number;
  /** out[m,n] = x[m,k] · W, W laid out per `layout` (w.length === n*k). Returns a new Float32Array of m*n. */
  linear(x: Float32Array, m: number, k: number, w: Float32Array, n: number, layout: Layout): Promise<Float32Array>;
  /** Batched: out[b][m,n] = a[b][m,k] · B[b], B[b] stored [k,n] (transB false) or [n,k] (transB true). Returns batch*m*n floats. */
  batched(
    a: Float32Array,
    bm: Float32Array,
    batch: number,
    m: number,
    k: number,
    n: number,
    transB: boolean,
  ): Promise<Float32Array>;
}

// ---- shape checks (a wrong length is a bug in the caller: fail loudly, never read past a view) ----

function checkDims(dims: Record<string, number>): void {
  for (const [name, d] of Object.entries(dims)) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new RangeError(`matmul: ${name} must be a non-negative integer, got ${d}`);
  }
}

function checkLength(what: string, arr: Float32Array, expected: number, shape: string): void {
  if (arr.length !== expected)
    throw new RangeError(`matmul: ${what} has ${arr.length} floats, expected ${shape} = ${expected}`);
}

function checkLinear(x: Float32Array, m: number, k: number, w: Float32Array, n: number, layout: Layout): void {
  checkDims({ m, k, n });
  if (layout !== "nk" && layout !== "kn") throw new RangeError(`matmul: unknown layout ${String(layout)}`);
  checkLength("x", x, m * k, `[${m},${k}]`);
  checkLength("w", w, n * k, layout === "nk" ? `[${n},${k}]` : `[${k},${n}]`);
}

function checkBatched(
  a: Float32Array,
  bm: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  transB: boolean,
): void {
  checkDims({ batch, m, k, n });
  checkLength("a", a, batch * m * k, `[${batch},${m},${k}]`);
  checkLength("b", bm, batch * n * k, transB ? `[${batch},${n},${k}]` : `[${batch},${k},${n}]`);
}

// ---- the plain TypeScript reference ----
// Sums are kept in JS numbers (float64) and rounded to f32 once per output element, so the reference
// is at least as accurate as any f32 GEMM it is compared with.

/** Rows of w per block in the "nk" kernel: ~256 KB of f32 weights, reused by every row of x. */
function rowsPerBlock(k: number): number {
  // Stryker disable next-line all: equivalent, the block size changes cache use, not one sum
  return Math.max(4, Math.floor(65536 / Math.max(k, 1)) & ~3);
}

// x[m,k] · w[n,k]ᵀ → out[m,n]. Blocks of w rows stay in cache across all m rows of x; four dot
// products at a time share each load of x.
function matmulNK(out: Float32Array, x: Float32Array, m: number, k: number, w: Float32Array, n: number): void {
  const jb = rowsPerBlock(k);
  // Stryker disable next-line EqualityOperator: equivalent, a block starting at n has no columns
  for (let j0 = 0; j0 < n; j0 += jb) {
    const j1 = Math.min(n, j0 + jb);
    // Stryker disable next-line EqualityOperator: equivalent, row m reads undefined and writes past the output
    for (let i = 0; i < m; i++) {
      const xo = i * k;
      const oo = i * n;
      let j = j0;
      // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, the one-column loop sums the same
      for (; j + 4 <= j1; j += 4) {
        const w0 = j * k,
          w1 = w0 + k,
          w2 = w1 + k,
          w3 = w2 + k;
        let s0 = 0,
          s1 = 0,
          s2 = 0,
          s3 = 0;
        for (let p = 0; p < k; p++) {
          const a = x[xo + p];
          s0 += a * w[w0 + p];
          s1 += a * w[w1 + p];
          s2 += a * w[w2 + p];
          s3 += a * w[w3 + p];
        }
        out[oo + j] = s0;
        out[oo + j + 1] = s1;
        out[oo + j + 2] = s2;
        out[oo + j + 3] = s3;
      }
      for (; j < j1; j++) {
        const wo = j * k;
        let s = 0;
        for (let p = 0; p < k; p++) s += x[xo + p] * w[wo + p];
        out[oo + j] = s;
      }
    }
  }
}

// x[m,k] · w[k,n] → out[m,n], as axpys: acc[i, j0:j1] += x[i,p] · w[p, j0:j1], four rows p at a time.
// A [64, 256] block of w (64 KB) stays in cache across all m rows; sums are float64 in acc[m, 256].
const KN_COLS = 256;
const KN_ROWS = 64;

function matmulKN(out: Float32Array, x: Float32Array, m: number, k: number, w: Float32Array, n: number): void {
  const acc = new Float64Array(m * KN_COLS);
  // Stryker disable next-line EqualityOperator: equivalent, a block starting at n has no columns
  for (let j0 = 0; j0 < n; j0 += KN_COLS) {
    const nb = Math.min(KN_COLS, n - j0);
    acc.fill(0);
    // Stryker disable next-line EqualityOperator: equivalent, a block starting at k has no rows
    for (let p0 = 0; p0 < k; p0 += KN_ROWS) {
      const p1 = Math.min(k, p0 + KN_ROWS);
      // Stryker disable next-line EqualityOperator: equivalent, row m reads undefined into an accumulator never read
      for (let i = 0; i < m; i++) {
        const xo = i * k,
          ao = i * KN_COLS;
        let p = p0;
        // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, the one-row loop gives the same float32 sums
        for (; p + 4 <= p1; p += 4) {
          const a0 = x[xo + p],
            a1 = x[xo + p + 1],
            a2 = x[xo + p + 2],
            a3 = x[xo + p + 3];
          const r0 = p * n + j0,
            r1 = r0 + n,
            r2 = r1 + n,
            r3 = r2 + n;
          for (let j = 0; j < nb; j++) acc[ao + j] += a0 * w[r0 + j] + a1 * w[r1 + j] + a2 * w[r2 + j] + a3 * w[r3 + j];
        }
        for (; p < p1; p++) {
          const a = x[xo + p],
            r = p * n + j0;
          // Stryker disable next-line EqualityOperator: equivalent, column nb of the accumulator is never read
          for (let j = 0; j < nb; j++) acc[ao + j] += a * w[r + j];
        }
      }
    }
    // round each sum to f32 once
    for (let i = 0; i < m; i++) out.set(acc.subarray(i * KN_COLS, i * KN_COLS + nb), i * n + j0);
  }
}

/** Plain TypeScript reference: out[m,n] = x[m,k]·W (layout as above). Used by tests and as fallback. */
export function matmulRef(
  out: Float32Array,
  x: Float32Array,
  m: number,
  k: number,
  w: Float32Array,
  n: number,
  layout: Layout,
): void {
  checkLinear(x, m, k, w, n, layout);
  checkLength("out", out, m * n, `[${m},${n}]`);
  if (layout === "nk") matmulNK(out, x, m, k, w, n);
  else matmulKN(out, x, m, k, w, n);
}

// a[b][m,k] · B[b] → out[b][m,n], one matmulRef per batch entry on subarray views.
function batchedRef(
  out: Float32Array,
  a: Float32Array,
  bm: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  transB: boolean,
): void {
  const layout: Layout = transB ? "nk" : "kn";
  for (let b = 0; b < batch; b++) {
    const ab = a.subarray(b * m * k, (b + 1) * m * k);
    const bb = bm.subarray(b * n * k, (b + 1) * n * k);
    matmulRef(out.subarray(b * m * n, (b + 1) * m * n), ab, m, k, bb, n, layout);
  }
}

export const jsBackend: MatmulBackend = {
  name: "js",
  async linear(x, m, k, w, n, layout) {
    checkLinear(x, m, k, w, n, layout);
    const out = new Float32Array(m * n);
    matmulRef(out, x, m, k, w, n, layout);
    return out;
  },
  async batched(a, bm, batch, m, k, n, transB) {
    checkBatched(a, bm, batch, m, k, n, transB);
    const out = new Float32Array(batch * m * n);
    batchedRef(out, a, bm, batch, m, k, n, transB);
    return out;
  },
};

// ---- onnxruntime-node ----
// Four tiny models, each with symbolic dims, so one session per op serves every shape:
//   linear nk: Gemm(transB=1)  X[M,K] · W[N,K]ᵀ → Y[M,N]
//   linear kn: Gemm            X[M,K] · W[K,N]  → Y[M,N]
//   batched nn: MatMul         A[b,M,K] · B[b,K,N] → Y[b,M,N]
//   batched nt: Transpose+MatMul (fused to FusedMatMul by ORT)  A[b,M,K] · B[b,N,K]ᵀ → Y[b,M,N]
// Inputs are passed as the caller's Float32Array views (byteOffset is honoured, no copy).
// session.run executes synchronously on the JS main thread (onnxruntime-node calls the native Run
// inside a setImmediate and blocks until it returns), so the event loop stalls for the whole GEMM and
// concurrent calls simply run one after another.

type Ort = typeof import("onnxruntime-node");

/** Thread count for onnxruntime's intra-op pool: SUPERWEIGHT_THREADS, else all available cores. */
export function threadCount(): number {
  const env = process.env.SUPERWEIGHT_THREADS;
  if (env === undefined || env === "") return availableParallelism();
  const t = Number(env);
  if (!Number.isInteger(t) || t < 1)
    throw new RangeError(`SUPERWEIGHT_THREADS must be a positive integer, got "${env}"`);
  return t;
}

/** Builds the onnxruntime backend; throws when onnxruntime-node (or its native binary) cannot load. */
export async function createOrtBackend(threads = threadCount()): Promise<MatmulBackend> {
  // onnxruntime's telemetry (a device id and an event database under ~/.cache/Microsoft/DeveloperTools,
  // with uploads where it finds a CA bundle) stays off unless the user asks for it.
  process.env.ORT_DISABLE_TELEMETRY ??= "1";
  const ort: Ort = await import("onnxruntime-node");
  // Stryker disable next-line ObjectLiteral: equivalent, threads and scheduling change the speed, not the products
  const options: InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    // Pool threads that spin between products take a core from the lanes and from the reading between products
    // (≈ 2 CPU-seconds of a 7B forward pass of 11 tokens here); blocked, they cost a wake-up per product.
    // Stryker disable next-line ObjectLiteral,StringLiteral: equivalent, spinning changes the speed, not the products
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
  const create = (model: Uint8Array) => ort.InferenceSession.create(model, options);
  const [nk, kn, nn, nt] = await Promise.all([
    create(linearModel(true)),
    create(linearModel(false)),
    create(batchedModel(false)),
    create(batchedModel(true)),
  ]);
  const f32 = (data: Float32Array, dims: number[]): Tensor => new ort.Tensor("float32", data, dims);

  // Runs one session, returning Y[dims]. The binding copies ORT's output into a fresh ArrayBuffer of
  // exactly that size, which we return as is (a preallocated output measured no faster: the binding
  // then copies it out again for the returned tensor).
  async function run(
    session: InferenceSession,
    feeds: Record<string, Tensor>,
    dims: number[],
    k: number,
  ): Promise<Float32Array> {
    const size = dims.reduce((s, d) => s * d, 1);
    if (size === 0 || k === 0) return new Float32Array(size); // nothing to compute, or sums of nothing
    const y = (await session.run(feeds)).Y.data;
    if (!(y instanceof Float32Array) || y.length !== size)
      throw new Error(`matmul: onnxruntime returned an unexpected output`);
    return y;
  }

  return {
    name: "onnxruntime",
    threads,
    async linear(x, m, k, w, n, layout) {
      checkLinear(x, m, k, w, n, layout);
      const W = layout === "nk" ? f32(w, [n, k]) : f32(w, [k, n]);
      return run(layout === "nk" ? nk : kn, { X: f32(x, [m, k]), W }, [m, n], k);
    },
    async batched(a, bm, batch, m, k, n, transB) {
      checkBatched(a, bm, batch, m, k, n, transB);
      const B = transB ? f32(bm, [batch, n, k]) : f32(bm, [batch, k, n]);
      return run(transB ? nt : nn, { A: f32(a, [batch, m, k]), B }, [batch, m, n], k);
    },
  };
}

let cached: Promise<MatmulBackend> | undefined;

/**
 * The fastest available backend: onnxruntime-node when it loads, else jsBackend (with fallbackReason
 * set). Cached, one per process. SUPERWEIGHT_BACKEND=js forces the fallback, =onnxruntime makes a
 * load failure an error; SUPERWEIGHT_THREADS sets the thread count (default os.availableParallelism()).
 */
export function getBackend(): Promise<MatmulBackend> {
  cached ??= chooseBackend();
  return cached;
}

/** The backend SUPERWEIGHT_BACKEND asks for (`want`); `load` builds onnxruntime's (a parameter so tests can fail it). */
export async function chooseBackend(
  want = process.env.SUPERWEIGHT_BACKEND ?? "",
  load: (threads: number) => Promise<MatmulBackend> = createOrtBackend,
): Promise<MatmulBackend> {
  if (want === "js") return jsBackend;
  if (want !== "" && want !== "onnxruntime") {
    throw new RangeError(`SUPERWEIGHT_BACKEND must be "js" or "onnxruntime", got "${want}"`);
  }
  const threads = threadCount(); // a bad SUPERWEIGHT_THREADS is an error, not a reason to fall back
  try {
    return await load(threads);
  } catch (e) {
    if (want === "onnxruntime") throw e;
    return { ...jsBackend, fallbackReason: `onnxruntime-node did not load: ${(e as Error).message}` };
  }
}
