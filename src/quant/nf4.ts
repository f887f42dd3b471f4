// The 16 NormalFloat-4 levels of QLoRA (Dettmers et al. 2023, arXiv 2305.14314, Appendix E): quantiles of N(0, 1)
// normalised to [−1, 1] with an exact zero, as bitsandbytes stores them (float32) and the paper's code lists them.

export const NF4_LEVELS = Float32Array.of(
  -1.0,
  -0.6961928009986877,
  -0.5250730514526367,
  -0.39491748809814453,
  -0.28444138169288635,
  -0.18477343022823334,
  -0.09105003625154495,
  0.0,
  0.07958029955625534,
  0.16093020141124725,
  0.24611230194568634,
  0.33791524171829224,
  0.44070982933044434,
  0.5626170039176941,
  0.7229568362236023,
  1.0,
);

/**
 * Index of the level nearest to x (x already in [−1, 1]); on an exact tie the lower one, as torch.argmin over
 * |x − level| picks the first. Differences are taken in float32, as the levels are.
 */
export function nearestNf4(x: number): number {
  const l = NF4_LEVELS;
  let i = 0;
  if (x >= l[8]) i = 8;
  if (x >= l[i + 4]) i += 4;
  if (x >= l[i + 2]) i += 2;
  if (x >= l[i + 1]) i += 1;
  if (i < 15 && Math.fround(l[i + 1] - x) < Math.fround(x - l[i])) i++;
  return i;
}
