// A forward pass recorded the way the fixtures store it, and the checks of the sparse-MoE reference keys.
import assert from "node:assert/strict";
import type { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import type { HookEvent, Routing } from "../src/engine/hooks.js";

interface ExpertRecord {
  positions?: readonly number[];
  input?: Float32Array;
  output?: Float32Array;
}

/** Run a model and record, for variant `variant`, what forward.test compares: per layer the MLP's down_proj
 * input/output (a sparse layer: its block output and routing), the residual, and each expert's rows. */
export async function runRecorded(
  model: Model,
  ids: number[],
  options: Parameters<typeof forward>[2] = {},
  variant = 0,
) {
  const layers = model.spec.layers;
  const rec = {
    downIn: new Array<Float32Array | undefined>(layers),
    downOut: new Array<Float32Array | undefined>(layers),
    residual: new Array<Float32Array>(layers),
    routing: new Array<Routing | undefined>(layers),
    experts: new Map<string, ExpertRecord>(),
  };
  const hook = (e: HookEvent) => {
    if (e.variant !== variant) return;
    const expert = e.expert === undefined ? undefined : (rec.experts.get(`${e.layer}:${e.expert}`) ?? {});
    if (expert) rec.experts.set(`${e.layer}:${e.expert}`, expert);
    if (e.point === "down_proj_input") {
      if (expert) Object.assign(expert, { input: e.data.slice(), positions: e.positions });
      else rec.downIn[e.layer] = e.data.slice();
    }
    if (e.point === "down_proj_output") {
      if (expert) expert.output = e.data.slice();
      else ((rec.downOut[e.layer] = e.data.slice()), (rec.routing[e.layer] = e.routing));
    }
    if (e.point === "layer_output") rec.residual[e.layer] = e.data.slice();
  };
  const out = await forward(model, ids, { ...options, hooks: [hook] });
  return { ...rec, logits: out.logits! };
}

export const flat = (a: unknown): number[] => (a as number[][]).flat(2) as number[];

/** The MoE keys of a reference against a recorded run: [what, actual, expected] for the tolerance checks. */
export function moeChecks(
  ref: any,
  out: Awaited<ReturnType<typeof runRecorded>>,
): [string, ArrayLike<number>, number[]][] {
  const checks: [string, ArrayLike<number>, number[]][] = [];
  const T = ref.input_ids.length;
  for (let l = 0; l < ref.router_logits.length; l++) {
    const routing = out.routing[l];
    if (ref.router_logits[l] === null) {
      assert.equal(routing, undefined, `layer ${l} is dense: no routing`);
      continue;
    }
    assert.ok(routing, `layer ${l} is sparse: its block output carries the routing`);
    assert.equal(out.downIn[l], undefined, `sparse layer ${l} has no dense down_proj input`);
    const k = ref.topk[l][0].length;
    assert.deepEqual(
      Array.from({ length: T }, (_, t) => Array.from(routing.experts.subarray(t * k, (t + 1) * k))),
      ref.topk[l],
      `layer ${l} top-k choices`,
    );
    checks.push([`layer ${l} router_logits`, routing.logits, flat(ref.router_logits[l])]);
    checks.push([`layer ${l} topk_weights`, routing.weights, flat(ref.topk_weights[l])]);
    const fired = [...out.experts.keys()]
      .filter((key) => key.startsWith(`${l}:`) && !key.endsWith(":shared"))
      .map((key) => key.split(":")[1]);
    assert.deepEqual(
      fired.sort(),
      Object.keys(ref.expert_down_proj_input[l]).sort(),
      `layer ${l}: exactly the routed experts run`,
    );
    for (const e of fired) {
      const r = out.experts.get(`${l}:${e}`)!,
        want = ref.expert_down_proj_input[l][e];
      assert.deepEqual(r.positions, want.tokens, `layer ${l} expert ${e} routed tokens`);
      checks.push([`layer ${l} expert ${e} down_proj input`, r.input!, flat(want.values)]);
      checks.push([
        `layer ${l} expert ${e} down_proj output`,
        r.output!,
        flat(ref.expert_down_proj_output[l][e].values),
      ]);
    }
    const shared = ref.shared_expert?.[l];
    if (shared) {
      const r = out.experts.get(`${l}:shared`)!;
      assert.equal(r.positions, undefined, "the shared expert sees every token");
      checks.push([`layer ${l} shared expert down_proj input`, r.input!, flat(shared.down_proj_input)]);
      checks.push([`layer ${l} shared expert down_proj output`, r.output!, flat(shared.down_proj_output)]);
      checks.push([`layer ${l} shared expert gate`, routing.sharedGate!, shared.gate]);
    } else assert.equal(out.experts.get(`${l}:shared`), undefined);
  }
  return checks;
}
