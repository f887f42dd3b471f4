// Reusable buffers for weight blocks, inside one WebAssembly memory so that bf16 / f16 → f32 widening
// runs as SIMD in place (≈5 G elements/s here, against ≈0.8 in a JavaScript loop). The kernels' source
// is widen.wat beside this file. Without WebAssembly SIMD everything falls back to plain arrays and loops.
// Each thread that imports this module (the engine's lanes) has its own arena.

const WIDEN_WASM =
  "AGFzbQEAAAABEANgAn9/AGABfwF/YAF7AXsCDwEDZW52Bm1lbW9yeQIAAQMFBAABAgAHGgIKd2lkZW5fYmYxNgAACXdpZGVuX2YxNgADCtYDBIoBAgF/AXsgASECAkADQCACIAFBeHFGDQEgAkEBayECIAAgAkECdGogACACQQF0ai8BAEEQdDYCAAwACwsCQANAIAJFDQEgAkEIayECIAAgAkEBdGr9AAAAIQMgACACQQJ0aiAD/aoBQRD9qwH9CwAQIAAgAkECdGogA/2pAUEQ/asB/QsAAAwACwsLOQEBfyAAQf//AXEhASAAQYCAAnFBEHQgAUENdEGAgID8B3IgAUENdL5DAACAd5S8IAFBgPgBTxtyC4gBAQF7IAD9DP9/AAD/fwAA/38AAP9/AAD9TiEBIAD9DACAAAAAgAAAAIAAAACAAAD9TkEQ/asBIAFBDf2rAf0MAACAfwAAgH8AAIB/AACAf/1QIAFBDf2rAf0MAACAdwAAgHcAAIB3AACAd/3mASAB/QwAfAAAAHwAAAB8AAAAfAAA/UD9Uv1QC4MBAgF/AXsgASECAkADQCACIAFBeHFGDQEgAkEBayECIAAgAkECdGogACACQQF0ai8BABABNgIADAALCwJAA0AgAkUNASACQQhrIQIgACACQQF0av0AAAAhAyAAIAJBAnRqIAP9qgEQAv0LABAgACACQQJ0aiAD/akBEAL9CwAADAALCws=";

/**
 * Largest block of a weight matrix widened at once (elements): 4M = 16 MB of float32. Small enough that
 * first touching the buffer is cheap (page faults cost ~3 ms/MB on some VMs), big enough that a block of
 * a 7B model's matrix is ≥ 380 rows, so the GEMM runs at full speed.
 */
export const MAX_BLOCK_ELEMENTS = blockElements(process.env.SUPERWEIGHT_BLOCK_ELEMENTS);

/** SUPERWEIGHT_BLOCK_ELEMENTS overrides the block size (tests use tiny blocks to exercise the splits). */
export function blockElements(env: string | undefined): number {
  if (env === undefined) return 4 * 1024 * 1024;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1 || n > 256 * 1024 * 1024)
    throw new Error(`SUPERWEIGHT_BLOCK_ELEMENTS=${env}: must be an integer from 1 to 268435456`);
  return n;
}
const PAGE = 65536;

type Kernel = (ptr: number, n: number) => void;
interface Arena {
  memory: WebAssembly.Memory;
  bf16: Kernel;
  f16: Kernel;
}
let arena: Arena | null | undefined;

function getArena(): Arena | null {
  if (arena !== undefined) return arena;
  try {
    const bytes = Buffer.from(WIDEN_WASM, "base64");
    // Reserved up front: growing a memory would detach the views handed out.
    const memory = new WebAssembly.Memory({ initial: Math.ceil((MAX_BLOCK_ELEMENTS * 4) / PAGE) });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    arena = { memory, bf16: instance.exports.widen_bf16 as Kernel, f16: instance.exports.widen_f16 as Kernel };
  } catch {
    arena = null;
  }
  return arena;
}

/** Whether bf16 widening runs in WebAssembly SIMD here. */
export function simdAvailable(): boolean {
  return getArena() !== null;
}

let fallback: Float32Array | undefined;

/** A float32 view of `size` elements of the one block buffer (reused: each call overwrites the last). */
export function blockBuffer(size: number): Float32Array {
  if (size > MAX_BLOCK_ELEMENTS) throw new RangeError(`block of ${size} elements exceeds ${MAX_BLOCK_ELEMENTS}`);
  const a = getArena();
  if (a) return new Float32Array(a.memory.buffer, 0, size);
  if (!fallback || fallback.length < size) fallback = new Float32Array(MAX_BLOCK_ELEMENTS);
  return fallback.subarray(0, size);
}

/** Widen `count` packed bf16 (f16) values at the start of `out` in place, if `out` lives in the arena. */
export function widenSimd(out: Float32Array, count: number, dtype: "BF16" | "F16"): boolean {
  const a = getArena();
  if (!a || out.buffer !== a.memory.buffer) return false;
  (dtype === "BF16" ? a.bf16 : a.f16)(out.byteOffset, count);
  return true;
}
