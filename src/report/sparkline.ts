// One character per value, on a log scale (spikes span orders of magnitude): ▁▂▃▄▅▆▇█

const BARS = "▁▂▃▄▅▆▇█";

export function sparkline(values: readonly number[]): string {
  const logs = values.map((v) => Math.log10(Math.max(Math.abs(v), 1e-6)));
  const lo = Math.min(...logs),
    hi = Math.max(...logs);
  return logs.map((l) => BARS[hi - lo < 1e-9 ? 0 : Math.round(((l - lo) / (hi - lo)) * (BARS.length - 1))]).join("");
}
