// What an intervention does on a few prompts, in one pass each: every next token's NLL, the per-layer maxima
// of the down projections' inputs and outputs (the paper's spikes), the residual stream at the super
// activations' channels after every layer (their collapse, or their restoration), and the next-token
// distribution after the last position (averaged over prompts: the paper's Figure 5).
import type { Model } from "../engine/model.js";
import { DataError } from "../data/errors.js";
import { readUtf8File, splitLines } from "../data/textfile.js";
import type { HookEvent } from "../engine/hooks.js";
import { largest, type LayerSpikes } from "../superweight/detect.js";
import { logSumExp } from "../engine/nll.js";
import type { ArmRunner } from "./runner.js";

/** One prompt per non-blank line of a UTF-8 file. */
export function readPromptFile(file: string): string[] {
  const prompts = splitLines(readUtf8File(file)).filter((l) => l.trim() !== "");
  if (!prompts.length) throw new DataError(file, "holds no prompts (one per line expected)", "EMPTY_FILE");
  return prompts;
}

export interface PromptInput {
  label: string;
  ids: number[];
}

/** A residual channel to follow: at `token`, or (without one) where a weight's own contribution peaks on each
 * prompt — the token with the largest |input| at its column of `tensor` in any variant (a super weight found
 * only once another is zeroed has its input spike only there). */
export type TraceSite = { layer: number; channel: number } & ({ token: number } | { tensor: string; column: number });

export interface ResidualTrace {
  layer: number;
  channel: number;
  token: number;
  /** The residual at (token, channel) after every layer. */
  byLayer: number[];
}

export interface PromptScore {
  /** nll[t] of ids[t + 1]. */
  nll: number[];
  meanNll: number | null;
  layers: LayerSpikes[];
  traces: ResidualTrace[];
  /** Every position's logits [T, vocab], when asked for (short prompts). */
  logits?: Float32Array;
}

export interface PromptsRun {
  /** [prompt][distinct model]. */
  scores: PromptScore[][];
  /** Per distinct model: the next-token distribution after each prompt's last position, averaged over prompts. */
  meanNext: Float64Array[];
}

const siteKey = (s: { tensor: string; column: number }) => `${s.tensor}:${s.column}`;

export async function measurePrompts(
  model: Model,
  prompts: readonly PromptInput[],
  sites: readonly TraceSite[],
  runner: ArmRunner,
  o: { logits?: boolean } = {},
): Promise<PromptsRun> {
  const { layers: L, vocab: V } = model.spec;
  const meanNext = runner.models.map(() => new Float64Array(V));
  const scores: PromptScore[][] = [];
  for (const prompt of prompts) {
    const T = prompt.ids.length;
    const perModel = await runner.run(async (batch) => {
      const n = batch.variants.length;
      const spikes = Array.from({ length: n }, () => new Map<number, LayerSpikes>());
      // residual[v][layer][channel] = that channel over all tokens; peaks[layer][channel]: the baseline's
      // down_proj output peak token there.
      const channels = [...new Set(sites.map((s) => s.channel))];
      const residual = Array.from({ length: n }, () =>
        Array.from({ length: L }, () => new Map<number, Float32Array>()),
      );
      const peaks = new Map<string, { abs: number; token: number }>();
      const hook = (e: HookEvent) => {
        const v = e.variant;
        if (e.point === "down_proj_input" || e.point === "down_proj_output") {
          const s = largest(e.data, e.width);
          const at = { ...s, token: e.positions ? e.positions[s.token] : s.token };
          const side = e.point === "down_proj_input" ? "downProjInput" : "downProjOutput";
          const layer = spikes[v].get(e.layer) ?? {
            layer: e.layer,
            downProjInput: { max: -1, value: 0, token: 0, channel: 0 },
            downProjOutput: { max: -1, value: 0, token: 0, channel: 0 },
          };
          if (at.max > layer[side].max) layer[side] = at;
          spikes[v].set(e.layer, layer);
          if (e.point === "down_proj_input")
            for (const site of sites)
              if (!("token" in site) && site.tensor === e.tensor)
                for (let r = 0; r < e.tokens; r++) {
                  const abs = Math.abs(e.data[r * e.width + site.column]),
                    key = siteKey(site);
                  if (abs > (peaks.get(key)?.abs ?? -1))
                    peaks.set(key, { abs, token: e.positions ? e.positions[r] : r });
                }
        }
        if (e.point === "layer_output")
          for (const c of channels)
            residual[v][e.layer].set(
              c,
              Float32Array.from({ length: e.tokens }, (_, t) => e.data[t * e.width + c]),
            );
      };
      const targets = prompt.ids.map((_, t) => (t + 1 < T ? prompt.ids[t + 1] : -1));
      const out = await runner.forward(batch, prompt.ids, {
        hooks: [hook],
        head: o.logits ? { logits: true, targets } : { targets, logitsAt: [T - 1] },
      });
      return batch.variants.map((_, v): PromptScore & { next: Float32Array } => {
        const nll = [...out.nll![v].subarray(0, T - 1)];
        const traces = sites.map((s) => {
          const token = "token" in s ? s.token : (peaks.get(siteKey(s))?.token ?? 0);
          return {
            layer: s.layer,
            channel: s.channel,
            token,
            byLayer: residual[v].map((m) => (token < T ? m.get(s.channel)![token] : NaN)),
          };
        });
        const logits = o.logits ? out.logits!.slice(v * T * V, (v + 1) * T * V) : undefined;
        return {
          nll,
          meanNll: nll.length ? nll.reduce((a, b) => a + b, 0) / nll.length : null,
          layers: [...spikes[v].values()].sort((a, b) => a.layer - b.layer),
          traces,
          ...(logits ? { logits } : {}),
          next: logits ? logits.subarray((T - 1) * V) : out.logitsAt![v],
        };
      });
    });
    perModel.forEach((s, m) => {
      const lse = logSumExp(s.next, 0, V);
      for (let j = 0; j < V; j++) meanNext[m][j] += Math.exp(s.next[j] - lse) / prompts.length;
    });
    scores.push(perModel.map(({ next: _, ...s }) => s));
  }
  return { scores, meanNext };
}
