// Where a real effect falls among its null draws: rank by size and z-score.

export interface NullStats {
  /** The real arm's effect (its metric minus the baseline's). */
  real: number;
  nullMean: number;
  /** Sample standard deviation (n − 1) of the null effects; null below two draws. */
  nullSd: number | null;
  /** (real − mean) / sd; null when the draws do not vary. */
  z: number | null;
  /** 1 + the draws whose |effect| is at least the real one's: 1 = larger than every draw. */
  rank: number;
  /** Draws + 1. */
  of: number;
}

export function nullStats(real: number, draws: readonly number[]): NullStats {
  const n = draws.length;
  const mean = draws.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : null;
  return {
    real,
    nullMean: mean,
    nullSd: sd,
    z: sd ? (real - mean) / sd : null,
    rank: 1 + draws.filter((d) => Math.abs(d) >= Math.abs(real)).length,
    of: n + 1,
  };
}
