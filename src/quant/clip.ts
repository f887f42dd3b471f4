// Clipping thresholds T (weights are clamped to [−T, T] before a block's min/max are taken), computed from |w|
// as the paper's code does (`quantize_blockwise` in outliers/functional/quantization.py):
//   zscore:K      T = mean(|w|) + K·std(|w|) over the block, std with Bessel's correction (torch.std);
//   block-pct:F   T = the k-th largest |w| of the block, k = max(⌊n·F + 1⌋, 1);
//   tensor-pct:F  T = the k-th largest |w| of the tensor, k = max(⌊n·F⌋, 1).
// n counts the weights that are not held out. Statistics are accumulated in float64 and T rounded to float32.

/** The k-th largest of a stream of values (or the smallest, when fewer than k arrive): a min-heap of the k largest. */
export class KthLargest {
  private heap: Float32Array;
  private capacity: number;
  private size = 0;

  constructor(k: number) {
    this.capacity = Math.max(1, k);
    this.heap = new Float32Array(this.capacity);
  }

  /** Start over for a new k, reusing the storage when it is large enough. */
  reset(k: number): void {
    this.capacity = Math.max(1, k);
    if (this.heap.length < this.capacity) this.heap = new Float32Array(this.capacity);
    this.size = 0;
  }

  /** Feed |values[i]| for i in [from, to). */
  addAbs(values: Float32Array, from: number, to: number): void {
    const h = this.heap;
    for (let i = from; i < to; i++) {
      const v = Math.abs(values[i]);
      if (this.size < this.capacity) this.push(v);
      else if (v > h[0]) this.replaceTop(v);
    }
  }

  /** NaN when nothing was fed. */
  value(): number {
    return this.size === 0 ? NaN : this.heap[0];
  }

  private push(v: number): void {
    const h = this.heap;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent] <= v) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = v;
  }

  private replaceTop(v: number): void {
    const h = this.heap;
    const n = this.size;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && h[child + 1] < h[child]) child++;
      if (h[child] >= v) break;
      h[i] = h[child];
      i = child;
    }
    h[i] = v;
  }
}

/**
 * Count, mean and standard deviation of |w|, from running float64 sums taken element by element in stream order
 * (shifted by the first |w|, against cancellation): the same result however the stream is cut into segments, so
 * a block measured in the engine's row blocks and one measured in the writer's chunks get the same threshold.
 */
export class AbsMoments {
  n = 0;
  private shift = 0;
  private sum = 0;
  private squares = 0;

  reset(): void {
    this.n = this.shift = this.sum = this.squares = 0;
  }

  addAbs(values: Float32Array, from: number, to: number): void {
    if (to <= from) return;
    if (this.n === 0) this.shift = Math.abs(values[from]);
    const k = this.shift;
    let sum = this.sum,
      squares = this.squares;
    for (let i = from; i < to; i++) {
      const d = Math.abs(values[i]) - k;
      sum += d;
      squares += d * d;
    }
    this.sum = sum;
    this.squares = squares;
    this.n += to - from;
  }

  /** mean + k·std in float64 (std 0 for a single value); NaN when empty. */
  value(k: number): number {
    const n = this.n;
    if (n === 0) return NaN;
    const variance = n > 1 ? Math.max(0, (this.squares - (this.sum * this.sum) / n) / (n - 1)) : 0;
    return this.shift + this.sum / n + k * Math.sqrt(variance);
  }

  /** value(k) rounded to float32: the clipping threshold. */
  threshold(k: number): number {
    return Math.fround(this.value(k));
  }
}

/** k for block-pct over n weights. */
export function blockPctRank(n: number, fraction: number): number {
  return Math.max(Math.floor(n * fraction + 1), 1);
}

/** k for tensor-pct over n weights. */
export function tensorPctRank(n: number, fraction: number): number {
  return Math.max(Math.floor(n * fraction), 1);
}
