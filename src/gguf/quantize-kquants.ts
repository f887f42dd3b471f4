// ggml's reference K-quant quantizers (quantize_row_q{4,5,6}_K_ref in ggml/src/ggml-quants.c), ported operation
// by operation so that the output matches ggml byte for byte: every float32 operation is rounded (Math.fround) in
// ggml's order, integers are rounded with ggml's nearest_int, scales are stored as ggml's float16.
// Each function quantizes nb whole 256-value super-blocks, in order: src[0 … 256·nb) → dst[0 … nb·block bytes).
// Scratch arrays are module-level: no allocation per block or per row.
import { halfToFloat, writeHalf } from "./quantize-half.js";

const f = Math.fround;
const QK_K = 256;
const GROUP_MAX_EPS = f(1e-15);
const F0_1 = f(0.1);

const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);

/**
 * ggml's nearest_int: the float32 sum v + 1.5·2^23 rounds v half to even; its low mantissa bits are the result.
 * Outside ±4194303 (where ggml asserts, compiled out in release builds) the same bit trick is applied literally.
 */
function nearestInt(v: number): number {
  if (v <= 4194303 && v >= -4194303) return f(v + 12582912) - 12582912;
  scratchF32[0] = v + 12582912;
  return (scratchI32[0] & 0x007fffff) - 0x00400000;
}

// make_qkx2_quants scratch and outputs for one super-block: 8 sub-blocks of 32.
const qL = new Uint8Array(QK_K);
const qLaux = new Uint8Array(32);
const qWeights = new Float32Array(32);
const qx = new Float32Array(32);
const qxm = new Float32Array(32);
const subScales = new Float32Array(QK_K / 16);
const subMins = new Float32Array(QK_K / 32);

/**
 * make_qkx2_quants(32, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad = false) on
 * x = src[xOff … xOff + 32), weights = qWeights, L = qL[lOff …]: a weighted least-squares search for the
 * sub-block's scale and min over nstep + 1 candidate grids. Writes subScales[j] = scale, subMins[j] = −min.
 */
function makeQkx2Quants(
  nmax: number,
  src: Float32Array,
  xOff: number,
  lOff: number,
  j: number,
  rmin: number,
  rdelta: number,
  nstep: number,
): void {
  const n = 32;
  const w = qWeights;
  const x = qx;
  for (let i = 0; i < n; i++) x[i] = src[xOff + i];
  let min = x[0];
  let max = x[0];
  let sumW = w[0];
  let sumX = f(sumW * x[0]);
  for (let i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sumW = f(sumW + w[i]);
    sumX = f(sumX + f(w[i] * x[i]));
  }
  if (min > 0) min = 0;
  if (max === min) {
    qL.fill(0, lOff, lOff + n);
    subScales[j] = 0;
    subMins[j] = -min;
    return;
  }
  const xm = qxm; // x − min, rounded
  for (let i = 0; i < n; i++) xm[i] = x[i] - min;
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * xm[i]))));
    qL[lOff + i] = l;
    const diff = f(f(f(scale * l) + min) - x[i]);
    bestError = f(bestError + f(w[i] * f(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    // min moves with each better candidate, and with it the grid of the next ones (as in ggml)
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let changed = is === 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscale * xm[i]));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      if (l !== qLaux[i]) {
        qLaux[i] = l;
        changed = true;
      }
    }
    // The same levels as the previous candidate give the same sums and error: it cannot be better. Skipping it
    // changes nothing but the time.
    if (!changed) continue;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = qLaux[i];
      const wl = f(w[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * qLaux[i]) + thisMin) - x[i]);
        curError = f(curError + f(w[i] * f(diff * diff)));
      }
      if (curError < bestError) {
        qL.set(qLaux, lOff);
        bestError = curError;
        scale = thisScale;
        if (thisMin !== min) {
          min = thisMin;
          for (let i = 0; i < n; i++) xm[i] = x[i] - min;
        }
      }
    }
  }
  subScales[j] = scale;
  subMins[j] = -min;
}

/** Q4_K / Q5_K share everything but nmax, the search grid and the bit packing. */
function quantizeQ45K(nmax: 15 | 31, dst: Uint8Array, src: Float32Array, nb: number): void {
  const bytes = nmax === 15 ? 144 : 176;
  const rmin = nmax === 15 ? -1 : -0.5;
  const nstep = nmax === 15 ? 20 : 15;
  for (let i = 0; i < nb; i++) {
    const xb = i * QK_K;
    const yb = i * bytes;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < QK_K / 32; j++) {
      const xo = xb + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(src[xo + l] * src[xo + l]));
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) qWeights[l] = avX + Math.abs(src[xo + l]);
      makeQkx2Quants(nmax, src, xo, 32 * j, j, rmin, F0_1, nstep);
      if (subScales[j] > maxScale) maxScale = subScales[j];
      if (subMins[j] > maxMin) maxMin = subMins[j];
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    const sc = yb + 4; // scales[12]: 6-bit scale and min per sub-block
    for (let j = 0; j < QK_K / 32; j++) {
      const ls = Math.min(63, nearestInt(f(invScale * subScales[j])) & 0xff);
      const lm = Math.min(63, nearestInt(f(invMin * subMins[j])) & 0xff);
      if (j < 4) {
        dst[sc + j] = ls;
        dst[sc + j + 4] = lm;
      } else {
        dst[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        dst[sc + j - 4] |= (ls >> 4) << 6;
        dst[sc + j] |= (lm >> 4) << 6;
      }
    }
    const dBits = writeHalf(dst, yb, f(maxScale / 63));
    const dminBits = writeHalf(dst, yb + 2, f(maxMin / 63));
    const dAll = halfToFloat(dBits);
    const dminAll = halfToFloat(dminBits);
    for (let j = 0; j < QK_K / 32; j++) {
      // get_scale_min_k4
      let s: number;
      let m: number;
      if (j < 4) {
        s = dst[sc + j] & 63;
        m = dst[sc + j + 4] & 63;
      } else {
        s = (dst[sc + j + 4] & 0xf) | ((dst[sc + j - 4] >> 6) << 4);
        m = (dst[sc + j + 4] >> 4) | ((dst[sc + j] >> 6) << 4);
      }
      const d = f(dAll * s);
      if (!d) continue;
      const dm = f(dminAll * m);
      const xo = xb + 32 * j;
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(f(f(src[xo + ii] + dm) / d));
        qL[32 * j + ii] = Math.max(0, Math.min(nmax, l));
      }
    }
    if (nmax === 15) {
      // qs[128] at 16: per 64 values, low nibbles = first 32, high nibbles = next 32
      for (let j = 0, q = yb + 16; j < QK_K; j += 64, q += 32) {
        for (let l = 0; l < 32; l++) dst[q + l] = qL[j + l] | (qL[j + l + 32] << 4);
      }
    } else {
      // qh[32] at 16 (the fifth bits, two bit planes per 64 values), qs[128] at 48
      const qh = yb + 16;
      dst.fill(0, qh, qh + 32);
      let m1 = 1;
      let m2 = 2;
      for (let n = 0, q = yb + 48; n < QK_K; n += 64, q += 32) {
        for (let j = 0; j < 32; j++) {
          let l1 = qL[n + j];
          if (l1 > 15) {
            l1 -= 16;
            dst[qh + j] |= m1;
          }
          let l2 = qL[n + j + 32];
          if (l2 > 15) {
            l2 -= 16;
            dst[qh + j] |= m2;
          }
          dst[q + j] = l1 | (l2 << 4);
        }
        m1 <<= 2;
        m2 <<= 2;
      }
    }
  }
}

/** quantize_row_q4_K_ref. dst: nb blocks of 144 bytes: d f16 | dmin f16 | scales[12] | qs[128]. */
export function quantizeQ4K(dst: Uint8Array, src: Float32Array, nb: number): void {
  quantizeQ45K(15, dst, src, nb);
}

/** quantize_row_q5_K_ref. dst: nb blocks of 176 bytes: d f16 | dmin f16 | scales[12] | qh[32] | qs[128]. */
export function quantizeQ5K(dst: Uint8Array, src: Float32Array, nb: number): void {
  quantizeQ45K(31, dst, src, nb);
}

// make_qx_quants output: L as int8 in 0 … 63 (stored in an Int8Array like ggml's int8_t L[QK_K]).
const q6L = new Int8Array(QK_K);
const q6X = new Float32Array(16);
const q6W = new Float32Array(16);
const q6WX = new Float32Array(16);
const q6Cand = new Int32Array(16);

/**
 * make_qx_quants(16, 32, x, L, rmse_type = 1, qw = NULL) on src[xOff … xOff + 16), L = q6L[xOff − block start …]:
 * weights x², the best of 19 scales −(32 + 0.1·is)/max. Returns the scale.
 */
function makeQxQuants(src: Float32Array, xOff: number, lOff: number): number {
  const n = 16;
  const nmax = 32;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(src[xOff + i]);
    if (ax > amax) {
      amax = ax;
      max = src[xOff + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    q6L.fill(0, lOff, lOff + n);
    return 0;
  }
  // the weights w = x² and the products w·x, the same for every candidate
  for (let i = 0; i < n; i++) {
    const x = src[xOff + i];
    const w = f(x * x);
    q6X[i] = x;
    q6W[i] = w;
    q6WX[i] = w * x;
  }
  let iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * q6X[i]))));
    q6L[lOff + i] = l + nmax;
    sumlx = f(sumlx + f(q6WX[i] * l));
    suml2 = f(suml2 + f(f(q6W[i] * l) * l));
  }
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(F0_1 * is)) / max);
    let changed = is === -9;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscale * q6X[i]));
      l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
      if (l !== q6Cand[i]) {
        q6Cand[i] = l;
        changed = true;
      }
    }
    // the same levels as the previous candidate give the same sums and the same verdict: skip them
    if (!changed) continue;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = q6Cand[i];
      sumlx = f(sumlx + f(q6WX[i] * l));
      suml2 = f(suml2 + f(f(q6W[i] * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) q6L[lOff + i] = q6Cand[i] + nmax;
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/** quantize_row_q6_K_ref. dst: nb blocks of 210 bytes: ql[128] | qh[64] | scales[16] int8 | d f16. */
export function quantizeQ6K(dst: Uint8Array, src: Float32Array, nb: number): void {
  for (let i = 0; i < nb; i++) {
    const xb = i * QK_K;
    const yb = i * 210;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < QK_K / 16; ib++) {
      const scale = makeQxQuants(src, xb + 16 * ib, 16 * ib);
      subScales[ib] = scale;
      const absScale = Math.abs(scale);
      if (absScale > maxAbsScale) {
        maxAbsScale = absScale;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      dst.fill(0, yb, yb + 210);
      continue;
    }
    const iscale = f(-128 / maxScale);
    const dAll = halfToFloat(writeHalf(dst, yb + 208, f(1 / iscale)));
    const sc = yb + 192;
    for (let ib = 0; ib < QK_K / 16; ib++) {
      dst[sc + ib] = Math.min(127, nearestInt(f(iscale * subScales[ib]))); // stored as int8
    }
    for (let j = 0; j < QK_K / 16; j++) {
      const d = f(dAll * ((dst[sc + j] << 24) >> 24));
      if (!d) continue;
      const xo = xb + 16 * j;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f(src[xo + ii] / d));
        q6L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    // per 128 values: ql gets 64 bytes of low nibbles, qh 32 bytes of the high 2-bit pairs
    for (let j = 0, ql = yb, qh = yb + 128; j < QK_K; j += 128, ql += 64, qh += 32) {
      for (let l = 0; l < 32; l++) {
        const a = q6L[j + l];
        const b = q6L[j + l + 32];
        const c = q6L[j + l + 64];
        const e = q6L[j + l + 96];
        dst[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
        dst[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
        dst[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
  }
}
