// An independent, plain float64 implementation of a Llama-like decoder for tests: written from the math
// (transformers' semantics), sharing nothing with src/engine. Tensors are plain number[][] matrices.
type M = number[][];

export interface RefWeights {
  get(name: string): Float32Array;
  shape(name: string): number[];
  has(name: string): boolean;
}

export interface RefConfig {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  layers: number;
  vocab: number;
  eps: number;
  theta: number;
  tied: boolean;
  /** Per-head RMSNorm of q and k before RoPE (weights self_attn.q_norm / k_norm, [head_dim]). */
  qkNorm?: boolean;
  /** A sparse MoE MLP: router mlp.gate [E, H], experts mlp.experts.{e}.{gate,up,down}_proj; in the layers
   * `sparse` names (default all), a dense mlp.{gate,up,down}_proj elsewhere. */
  experts?: { count: number; topK: number; renormalize: boolean; sparse?: (layer: number) => boolean };
}

const matrix = (w: Float32Array, rows: number, cols: number): M =>
  Array.from({ length: rows }, (_, r) => Array.from(w.subarray(r * cols, (r + 1) * cols)));
/** x[T, k] · W[n, k]ᵀ */
const linear = (x: M, w: M): M => x.map((row) => w.map((wr) => wr.reduce((s, v, i) => s + v * row[i], 0)));
const rms = (x: number[], w: ArrayLike<number>, eps: number) => {
  const s = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + eps);
  return x.map((v, i) => v * s * w[i]);
};
const silu = (v: number) => v / (1 + Math.exp(-v));

export interface RefRecord {
  logits: M;
  /** Per layer and expert: the token positions routed to it and its down projection's input/output rows. */
  experts: { layer: number; expert: number; positions: number[]; input: M; output: M }[];
  routerGap: number;
}

export function referenceForward(c: RefConfig, w: RefWeights, ids: number[]): RefRecord {
  const { hidden: H, heads, kvHeads, headDim: d } = c;
  const T = ids.length;
  const W = (name: string) => {
    const [r, k] = w.shape(name);
    return matrix(w.get(name), r, k);
  };
  const emb = w.get("model.embed_tokens.weight");
  let x: M = ids.map((id) => Array.from(emb.subarray(id * H, (id + 1) * H)));
  const inv = Array.from({ length: d / 2 }, (_, i) => 1 / Math.pow(c.theta, (2 * i) / d));
  const rope = (v: number[], t: number) => {
    const out = v.slice();
    for (let i = 0; i < d / 2; i++) {
      const a = t * inv[i],
        x1 = v[i],
        x2 = v[i + d / 2];
      out[i] = x1 * Math.cos(a) - x2 * Math.sin(a);
      out[i + d / 2] = x2 * Math.cos(a) + x1 * Math.sin(a);
    }
    return out;
  };
  const record: RefRecord = { logits: [], experts: [], routerGap: Infinity };
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    const n1 = x.map((r) => rms(r, w.get(p + "input_layernorm.weight"), c.eps));
    const q = linear(n1, W(p + "self_attn.q_proj.weight")),
      k = linear(n1, W(p + "self_attn.k_proj.weight")),
      v = linear(n1, W(p + "self_attn.v_proj.weight"));
    const head = (row: number[], h: number) => row.slice(h * d, (h + 1) * d);
    const qn = c.qkNorm ? w.get(p + "self_attn.q_norm.weight") : undefined,
      kn = c.qkNorm ? w.get(p + "self_attn.k_norm.weight") : undefined;
    const qh = (t: number, h: number) => rope(qn ? rms(head(q[t], h), qn, c.eps) : head(q[t], h), t);
    const kh = (t: number, h: number) => rope(kn ? rms(head(k[t], h), kn, c.eps) : head(k[t], h), t);
    const ctx: M = Array.from({ length: T }, () => new Array(heads * d).fill(0));
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / (heads / kvHeads));
      for (let t = 0; t < T; t++) {
        const qv = qh(t, h);
        const s = Array.from(
          { length: t + 1 },
          (_, j) => kh(j, g).reduce((a, kv, i) => a + kv * qv[i], 0) / Math.sqrt(d),
        );
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= t; j++) for (let i = 0; i < d; i++) ctx[t][h * d + i] += (e[j] / z) * v[j][g * d + i];
      }
    }
    const attn = linear(ctx, W(p + "self_attn.o_proj.weight"));
    const h1 = x.map((r, t) => r.map((v, i) => v + attn[t][i]));
    const n2 = h1.map((r) => rms(r, w.get(p + "post_attention_layernorm.weight"), c.eps));
    const mlp = (rows: M, pre: string) => {
      const g = linear(rows, W(pre + "gate_proj.weight")),
        u = linear(rows, W(pre + "up_proj.weight"));
      const inner = g.map((r, t) => r.map((v, i) => silu(v) * u[t][i]));
      return { inner, out: linear(inner, W(pre + "down_proj.weight")) };
    };
    let y: M;
    if (c.experts && (c.experts.sparse?.(l) ?? true)) {
      const { count: E, topK, renormalize } = c.experts;
      const logits = linear(n2, W(p + "mlp.gate.weight"));
      y = Array.from({ length: T }, () => new Array(H).fill(0));
      const routes = logits.map((r) => {
        const m = Math.max(...r),
          e = r.map((v) => Math.exp(v - m)),
          z = e.reduce((a, b) => a + b, 0);
        const probs = e.map((v) => v / z);
        const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]);
        if (order.length > topK) record.routerGap = Math.min(record.routerGap, r[order[topK - 1]] - r[order[topK]]);
        const top = order.slice(0, topK),
          s = top.reduce((a, e2) => a + probs[e2], 0);
        return top.map((e2) => ({ e: e2, w: renormalize ? probs[e2] / s : probs[e2] }));
      });
      for (let e = 0; e < E; e++) {
        const positions = routes.flatMap((r, t) => (r.some((x2) => x2.e === e) ? [t] : []));
        if (!positions.length) continue;
        const { inner, out } = mlp(
          positions.map((t) => n2[t]),
          `${p}mlp.experts.${e}.`,
        );
        record.experts.push({ layer: l, expert: e, positions, input: inner, output: out });
        positions.forEach((t, i) => {
          const wt = routes[t].find((x2) => x2.e === e)!.w;
          for (let j = 0; j < H; j++) y[t][j] += wt * out[i][j];
        });
      }
    } else y = mlp(n2, p + "mlp.").out;
    x = h1.map((r, t) => r.map((v, i) => v + y[t][i]));
  }
  const normed = x.map((r) => rms(r, w.get("model.norm.weight"), c.eps));
  record.logits = linear(normed, W(c.tied ? "model.embed_tokens.weight" : "lm_head.weight"));
  return record;
}

/** Seeded uniform values in [−scale, scale), float32-exact. */
export function seeded(seed: number) {
  let a = seed >>> 0;
  return (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => {
      a = (a * 1664525 + 1013904223) >>> 0;
      return Math.fround(((a / 4294967296) * 2 - 1) * scale);
    });
}
