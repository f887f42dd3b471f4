// An eval report as one JSON object (the `--json` output): every measurement, the baseline beside each arm
// (arm 0), the exact changes of each arm. Typed arrays become plain arrays; a non-finite number becomes null.
import type { EvalReport } from "../eval/eval.js";

export function evalJson(r: EvalReport): string {
  return JSON.stringify(r, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v));
}
