// Published super-weight coordinates (Yu et al., "The Super Weight in Large Language Models",
// arXiv 2411.07191), kept apart from coordinates the community reported for other models.
//
// A coordinate is [layer, row, column] of the layer's down projection, with row = output (hidden /
// residual) channel and column = input (intermediate) channel, i.e. for nn.Linear, stored [out, in]:
//   model.layers.{layer}.mlp.down_proj.weight[row, column]
// GPT-2 stores its MLP output projection as a Conv1D, [in, out]; for it `index` is [column, row].
// Every coordinate names the stored tensor and its index in that tensor, so nobody has to guess.

/** How a projection's weight is stored: nn.Linear is [out, in]; GPT-2's Conv1D is [in, out]. */
/** How the tensor stores it: [out, in] ("nk", nn.Linear) or [in, out] ("kn", GPT-2's Conv1D), as the engine says. */
export type WeightLayout = "nk" | "kn";

export type Provenance = "paper" | "community";

export interface PublishedSuperWeight {
  /** Decoder layer (block) index, from 0. */
  layer: number;
  /** Output channel: the hidden (residual-stream) dimension the weight writes to. */
  row: number;
  /** Input channel: the intermediate (MLP) dimension the weight reads from. */
  column: number;
  /** Tensor name as stored in the model's safetensors checkpoint. */
  tensor: string;
  /** Storage order of `tensor`. */
  layout: WeightLayout;
  /** Index into `tensor` as stored: [row, column] for "nk", [column, row] for "kn". */
  index: readonly [number, number];
  source: Provenance;
  /** Activation sizes seen at this weight (down-projection input at `column`, output at `row`), where reported. */
  activation?: { input: number; output: number; source: Provenance };
  note?: string;
}

export interface DirectoryEntry {
  /** Hugging Face model id, in its canonical spelling. */
  modelId: string;
  /** Other ids (and bare names) for the same weights. Chat/instruct variants are different weights and never aliases. */
  aliases: string[];
  name: string;
  /** `model_type` of the model's config.json. */
  modelType: string;
  /** Sizes from the model's config.json, to check that a loaded checkpoint is the one these coordinates belong to. */
  dims: { layers: number; hidden: number; intermediate: number };
  coordinates: PublishedSuperWeight[];
  source: Provenance;
  reference: string;
  notes?: string;
}

const PAPER = "Yu et al. 2024, The Super Weight in Large Language Models, arXiv 2411.07191";
const COMMUNITY =
  "community report, not in the paper: reported publicly by users of the paper's code; confirm it with `superweight scan`";

type Extra = Pick<PublishedSuperWeight, "activation" | "note">;

/** A down_proj coordinate (nn.Linear, [out, in]) of a Llama-style model. */
function downProj(
  source: Provenance,
  layer: number,
  row: number,
  column: number,
  extra: Extra = {},
): PublishedSuperWeight {
  return {
    layer,
    row,
    column,
    tensor: `model.layers.${layer}.mlp.down_proj.weight`,
    layout: "nk",
    index: [row, column],
    source,
    ...extra,
  };
}

const paper = (layer: number, row: number, column: number, extra?: Extra) =>
  downProj("paper", layer, row, column, extra);
const community = (layer: number, row: number, column: number, extra?: Extra) =>
  downProj("community", layer, row, column, extra);

const ENTRIES: DirectoryEntry[] = [
  // --- The paper: Table 1 and its released code ---------------------------------------------
  {
    modelId: "huggyllama/llama-7b",
    aliases: ["llama-7b"],
    name: "Llama-7B",
    modelType: "llama",
    dims: { layers: 32, hidden: 4096, intermediate: 11008 },
    coordinates: [paper(2, 3968, 7003)],
    source: "paper",
    reference: `${PAPER}, Table 1 and released code`,
  },
  {
    modelId: "huggyllama/llama-13b",
    aliases: ["llama-13b"],
    name: "Llama-13B",
    modelType: "llama",
    dims: { layers: 40, hidden: 5120, intermediate: 13824 },
    coordinates: [paper(2, 2231, 2278), paper(2, 2231, 6939)],
    source: "paper",
    reference: `${PAPER}, Table 1 and released code`,
  },
  {
    modelId: "huggyllama/llama-30b",
    aliases: ["llama-30b"],
    name: "Llama-30B",
    modelType: "llama",
    dims: { layers: 60, hidden: 6656, intermediate: 17920 },
    coordinates: [paper(3, 5633, 12817), paper(3, 5633, 17439), paper(10, 5633, 14386)],
    source: "paper",
    reference: `${PAPER}, Table 1 and released code`,
  },
  {
    modelId: "meta-llama/Llama-2-7b-hf",
    aliases: ["Llama-2-7b-hf", "NousResearch/Llama-2-7b-hf"],
    name: "Llama-2-7B",
    modelType: "llama",
    dims: { layers: 32, hidden: 4096, intermediate: 11008 },
    coordinates: [
      paper(1, 2533, 7890, {
        activation: { input: 1390, output: 2242, source: "community" },
      }),
    ],
    source: "paper",
    reference: `${PAPER}, Table 1`,
    notes:
      "Community runs also see late-layer spikes (layer 30, ~10,000; layers 29-31) that flip sign when the " +
      "layer-1 weight is removed: a cancelling pair, not super weights in the paper's sense.",
  },
  {
    modelId: "meta-llama/Llama-2-13b-hf",
    aliases: ["Llama-2-13b-hf", "NousResearch/Llama-2-13b-hf"],
    name: "Llama-2-13B",
    modelType: "llama",
    dims: { layers: 40, hidden: 5120, intermediate: 13824 },
    coordinates: [paper(3, 4743, 7678)],
    source: "paper",
    reference: `${PAPER}, Table 1`,
  },
  {
    modelId: "mistralai/Mistral-7B-v0.1",
    aliases: ["Mistral-7B-v0.1"],
    name: "Mistral-7B-v0.1",
    modelType: "mistral",
    dims: { layers: 32, hidden: 4096, intermediate: 14336 },
    coordinates: [
      paper(1, 2070, 7310, {
        activation: { input: 950, output: -263, source: "community" },
      }),
    ],
    source: "paper",
    reference: `${PAPER}, Table 1 and released code`,
  },
  {
    modelId: "allenai/OLMo-1B-0724-hf",
    aliases: ["OLMo-1B-0724-hf"],
    name: "OLMo-1B-0724",
    modelType: "olmo",
    dims: { layers: 16, hidden: 2048, intermediate: 8192 },
    coordinates: [
      paper(1, 1764, 1710),
      paper(2, 1764, 8041, {
        note: "layer as in the paper's released code (layer 2); some copies give [1, 1764, 8041] — verify by scanning",
      }),
    ],
    source: "paper",
    reference: `${PAPER}, Table 1 and released code`,
    notes: "Users of the official code ask how the second weight was found; the detection script was never published.",
  },
  {
    modelId: "allenai/OLMo-7B-0724-hf",
    aliases: ["OLMo-7B-0724-hf"],
    name: "OLMo-7B-0724",
    modelType: "olmo",
    dims: { layers: 32, hidden: 4096, intermediate: 11008 },
    coordinates: [paper(1, 269, 7467), paper(2, 269, 8275), paper(7, 269, 453), paper(24, 269, 2300)],
    source: "paper",
    reference: `${PAPER}, Table 1 and released code`,
  },
  {
    modelId: "microsoft/Phi-3-mini-4k-instruct",
    aliases: ["Phi-3-mini-4k-instruct"],
    name: "Phi-3-mini-4k-instruct",
    modelType: "phi3",
    dims: { layers: 32, hidden: 3072, intermediate: 8192 },
    coordinates: [
      paper(2, 525, 808),
      paper(2, 1693, 808),
      paper(2, 1113, 808),
      paper(4, 525, 2723),
      paper(4, 1113, 2723),
      paper(4, 1693, 2723),
    ],
    source: "paper",
    reference: `${PAPER}, Table 1 and released code`,
    notes:
      "The paper names no revision, and this repository's weights have been updated since release: verify by scanning.",
  },
  {
    modelId: "meta-llama/Meta-Llama-3-8B",
    aliases: ["Meta-Llama-3-8B", "NousResearch/Meta-Llama-3-8B"],
    name: "Llama-3-8B",
    modelType: "llama",
    dims: { layers: 32, hidden: 4096, intermediate: 14336 },
    coordinates: [paper(1, 788, 2427), paper(1, 1384, 2427), paper(1, 4062, 2427)],
    source: "paper",
    reference: `${PAPER}, released code`,
    notes:
      "The paper's code reuses these coordinates for Meta-Llama-3-8B-Instruct; that is a different set of " +
      "weights and is not listed here.",
  },

  // --- Community reports, beyond the paper ----------------------------------------------------
  {
    modelId: "meta-llama/Llama-3.1-8B",
    aliases: ["meta-llama/Meta-Llama-3.1-8B", "Llama-3.1-8B", "Meta-Llama-3.1-8B"],
    name: "Llama-3.1-8B",
    modelType: "llama",
    dims: { layers: 32, hidden: 4096, intermediate: 14336 },
    coordinates: [
      community(1, 788, 2427, { activation: { input: -443, output: 300, source: "community" } }),
      community(1, 1384, 2427, { activation: { input: -443, output: -275, source: "community" } }),
      community(1, 4062, 2427, { activation: { input: -443, output: -273, source: "community" } }),
    ],
    source: "community",
    reference: COMMUNITY,
    notes: "Same coordinates as Llama-3-8B. The same naive run also lists layer-31 spikes that nobody ablated.",
  },
  {
    modelId: "HuggingFaceTB/SmolLM2-1.7B",
    aliases: ["SmolLM2-1.7B"],
    name: "SmolLM2-1.7B",
    modelType: "llama",
    dims: { layers: 24, hidden: 2048, intermediate: 8192 },
    coordinates: [community(1, 749, 4987, { note: "zeroing it: WikiText-2 perplexity 6.93 → 9e7" })],
    source: "community",
    reference: COMMUNITY,
  },
  {
    modelId: "Qwen/Qwen2.5-3B",
    aliases: ["Qwen2.5-3B"],
    name: "Qwen2.5-3B",
    modelType: "qwen2",
    dims: { layers: 36, hidden: 2048, intermediate: 11008 },
    coordinates: [community(2, 318, 3189, { note: "zeroing it: perplexity 7.22 → 9.19, not catastrophic" })],
    source: "community",
    reference: COMMUNITY,
  },
  {
    modelId: "openai-community/gpt2",
    aliases: ["gpt2"],
    name: "GPT-2 124M",
    modelType: "gpt2",
    dims: { layers: 12, hidden: 768, intermediate: 3072 },
    coordinates: [
      {
        // Block 2's MLP output projection is a Conv1D stored [in = 3072, out = 768]: input channel 666
        // feeds output channel 447 through weight[666, 447]. The checkpoint names it without the
        // "transformer." prefix that GPT2LMHeadModel uses.
        layer: 2,
        row: 447,
        column: 666,
        tensor: "h.2.mlp.c_proj.weight",
        layout: "kn",
        index: [666, 447],
        source: "community",
        note: "Conv1D [in, out]: stored at weight[666, 447]; zeroing it: perplexity unchanged",
      },
    ],
    source: "community",
    reference: COMMUNITY,
    notes: "Removing it is harmless, so it is not a super weight in the paper's sense; listed for comparison.",
  },
];

function deepFreeze<T>(value: T): T {
  // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent, a primitive (or null) is frozen already.
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export const DIRECTORY: readonly DirectoryEntry[] = deepFreeze(ENTRIES);

/** Lookup key: case-insensitive, a trailing "@revision" and surrounding whitespace dropped. */
function key(modelId: string): string {
  // Stryker disable next-line MethodExpression: equivalent, the name is trimmed again below.
  const id = modelId.trim();
  const at = id.lastIndexOf("@");
  // Stryker disable next-line EqualityOperator: equivalent, "@…" (at 0) is no entry's name either way.
  const name = (at > 0 ? id.slice(0, at) : id).trim();
  // Stryker disable next-line MethodExpression: equivalent, the table's own keys go through the same case folding.
  return name.toLowerCase();
}

const BY_KEY: ReadonlyMap<string, DirectoryEntry> = (() => {
  const map = new Map<string, DirectoryEntry>();
  for (const entry of DIRECTORY) {
    for (const id of [entry.modelId, ...entry.aliases]) {
      const k = key(id);
      const other = map.get(k);
      if (other) throw new Error(`superweight directory: "${id}" names both ${other.modelId} and ${entry.modelId}`);
      map.set(k, entry);
    }
  }
  return map;
})();

/** Look up by HF model id or alias, case-insensitive; also accepts a trailing revision "@rev" (ignored). */
export function lookupPublished(modelId: string): DirectoryEntry | undefined {
  return BY_KEY.get(key(modelId));
}
