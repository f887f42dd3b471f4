// A model → a llama.cpp-ready GGUF file, in two steps:
//   planGgufExport: every decision — metadata (architecture, tokenizer, recipe), tensor names, transforms and
//     types — made and checked before anything is written (a tokenizer or a model llama.cpp cannot take is
//     refused here);
//   writeGgufExport: the file, written atomically, one block of rows at a time (never a whole model in memory;
//     a whole tensor only where it must be transposed, GPT-2's Conv1D): read → the converter's transform →
//     clipping (block formats, super weights held out) → ggml's block encoding by the project's quantizers.
// Then the written file is read back with the project's own GGUF reader and each super weight's stored value
// reported beside its original.
import { statSync } from "node:fs";
import { basename } from "node:path";
import type { Model } from "../engine/model.js";
import { UserError } from "../errors.js";
import { AbsMoments, KthLargest, blockPctRank, tensorPctRank } from "../quant/clip.js";
import type { Clip } from "../quant/scheme.js";
import type { GgufKv } from "../gguf/container.js";
import { planArchitecture, FILE_TYPE_KEY, type PlannedTensor } from "./plan.js";
import { isBlockType, recipeMetadata, recipeText, recipeTypes, type Recipe, type SuperWeight } from "./recipe.js";
import { exportVocabulary, type ExportVocabulary, type VocabularyKind, type VocabularyOptions } from "./vocab.js";
import { FTYPES, quantizeOrder } from "../gguf/mixture.js";
import { GGML_TYPES, quantizedSize, quantizeRow, type GgmlType } from "../gguf/quantize.js";
import { GgufCheckpoint } from "../gguf/source.js";
import { writeGguf } from "../gguf/writer.js";

export interface GgufExportOptions extends Recipe, VocabularyOptions {
  /** general.name (default: the model folder's name). */
  name?: string;
  /** The tokenizer metadata, when already built (exportVocabulary(model, options)). */
  vocabulary?: ExportVocabulary;
}

export interface ExportTensor extends PlannedTensor {
  type: GgmlType;
  /** Flat GGUF indices (row · ne0 + column) of the super weights it holds, increasing. */
  held: number[];
}

export interface GgufExportPlan {
  model: Model;
  arch: string;
  recipe: Recipe;
  recipeText: string;
  metadata: [string, GgufKv][];
  /** In the order written (llama.cpp's). */
  tensors: ExportTensor[];
  /** GGUF names of the tensors raised to the keep type. */
  raised: string[];
  vocabulary: VocabularyKind;
  notes: string[];
}

const FLOAT_STORAGE = ["F32", "F16", "BF16", "F64"];

/** Everything about the file, checked; nothing written. */
export function planGgufExport(model: Model, o: GgufExportOptions): GgufExportPlan {
  const plan = planArchitecture(model);
  const name = o.name ?? basename(model.path).replace(/\.gguf$/i, "");
  const vocabulary = o.vocabulary ?? exportVocabulary(model, o);
  // llama.cpp marks Phi-3's special tokens by name ("phi3" / "phi-3" in general.name) and aborts when they are absent
  if (vocabulary.kind === "stand-in" && /phi-?3/i.test(name))
    throw new UserError(
      `general.name "${name}" makes llama.cpp look for Phi-3's special tokens, which the stand-in ` +
        "vocabulary has not: give another --name",
    );
  const { spec } = model;
  const shape = { arch: plan.arch, nLayers: spec.layers, nHead: spec.heads, nHeadKv: spec.kvHeads };
  const types = recipeTypes(plan.tensors, shape, o);
  const text = recipeText(o, plan.tensors, types);
  const tensors = quantizeOrder(plan.tensors).map((t): ExportTensor => ({
    ...t,
    type: types.types.get(t.name)!,
    held: heldIndices(t, o.superWeights),
  }));
  const metadata: [string, GgufKv][] = [
    ["general.architecture", { type: "STRING", value: plan.arch }],
    ["general.type", { type: "STRING", value: "model" }],
    ["general.name", { type: "STRING", value: name }],
    ...plan.metadata.map(([key, kv]): [string, GgufKv] =>
      key === FILE_TYPE_KEY ? [key, { type: "UINT32", value: FTYPES[o.ftype].id }] : [key, kv],
    ),
    ["general.quantization_version", { type: "UINT32", value: 2 }],
    ...vocabulary.entries,
    ...recipeMetadata(o, text),
  ];
  const notes = [...plan.notes];
  const quantized = [...new Set(plan.tensors.map((t) => t.hf && model.dtype(t.hf)))].filter(
    (d): d is string => d !== undefined && !FLOAT_STORAGE.includes(d.toUpperCase()),
  );
  if (quantized.length)
    notes.push(
      `the source is already quantized (${quantized.join(", ")}): ` + "its dequantized weights are quantized again",
    );
  return {
    model,
    arch: plan.arch,
    recipe: o,
    recipeText: text,
    metadata,
    tensors,
    raised: types.raised,
    vocabulary: vocabulary.kind,
    notes,
  };
}

function heldIndices(t: PlannedTensor, superWeights: readonly SuperWeight[]): number[] {
  const mine = superWeights.filter((w) => w.tensor === t.hf);
  if (mine.length && (t.ne.length !== 2 || t.transform === "permute"))
    throw new RangeError(`super weights in "${t.hf}", which is not a plain matrix`);
  return [...new Set(mine.map((w) => w.row * t.ne[0] + w.column))].sort((a, b) => a - b);
}

export interface StoredSuperWeight extends SuperWeight {
  ggufTensor: string;
  type: GgmlType;
  /** Read back from the written file, dequantized. */
  stored: number;
  error: number;
}

export interface GgufExportResult {
  path: string;
  fileBytes: number;
  /** Bytes of tensor data (without metadata and padding). */
  tensorBytes: number;
  /** Bits per weight over the tensor data. */
  bitsPerWeight: number;
  ftype: string;
  recipe: string;
  vocabulary: VocabularyKind;
  tensors: { name: string; hf: string | null; type: GgmlType; ne: number[]; bytes: number }[];
  typeCounts: Record<string, number>;
  superWeights: StoredSuperWeight[];
  notes: string[];
  seconds: number;
}

export interface WriteOptions {
  /** Called before each tensor is written. */
  onTensor?: (tensor: ExportTensor, index: number, count: number) => void;
}

/** Write the planned file at `path` (atomically) and read the super weights back from it. */
export function writeGgufExport(plan: GgufExportPlan, path: string, o: WriteOptions = {}): GgufExportResult {
  const t0 = performance.now();
  const { model, tensors } = plan;
  writeGguf(
    path,
    plan.metadata,
    tensors.map((t, i) => ({
      name: t.name,
      type: t.type,
      ne: t.ne,
      data: () => {
        o.onTensor?.(t, i, tensors.length);
        return encodedChunks(model, t, plan.recipe.clip);
      },
    })),
  );
  const sizes = tensors.map((t) => quantizedSize(t.type, elements(t)));
  const weights = tensors.reduce((s, t) => s + elements(t), 0);
  const tensorBytes = sizes.reduce((a, b) => a + b, 0);
  const typeCounts: Record<string, number> = {};
  for (const t of tensors) typeCounts[t.type] = (typeCounts[t.type] ?? 0) + 1;
  return {
    path,
    fileBytes: statSync(path).size,
    tensorBytes,
    bitsPerWeight: (tensorBytes * 8) / weights,
    ftype: plan.recipe.ftype,
    recipe: plan.recipeText,
    vocabulary: plan.vocabulary,
    tensors: tensors.map((t, i) => ({ name: t.name, hf: t.hf ?? null, type: t.type, ne: t.ne, bytes: sizes[i] })),
    typeCounts,
    superWeights: readBack(path, plan),
    notes: plan.notes,
    seconds: (performance.now() - t0) / 1000,
  };
}

function readBack(path: string, plan: GgufExportPlan): StoredSuperWeight[] {
  if (!plan.recipe.superWeights.length) return [];
  const file = GgufCheckpoint.open(path);
  try {
    return plan.recipe.superWeights.map((w) => {
      const t = plan.tensors.find((x) => x.hf === w.tensor)!;
      const stored = file.readRows(w.tensor, w.row, w.row + 1)[w.column];
      return { ...w, ggufTensor: t.name, type: t.type, stored, error: stored - w.value };
    });
  } finally {
    file.close();
  }
}

const elements = (t: { ne: number[] }) => t.ne.reduce((a, b) => a * b, 1);

/** Rows per block read (of ne0 values each): about 4M values, 16 MB of float32. */
const CHUNK_VALUES = 1 << 22;

/** The tensor's stored bytes, one block of rows at a time. */
function* encodedChunks(model: Model, t: ExportTensor, clip: Clip): Iterable<Uint8Array> {
  const clipping = isBlockType(t.type) && clip.method !== "none";
  const threshold = clipping && clip.method === "tensor-pct" ? tensorThreshold(model, t, clip.fraction) : NaN;
  for (const chunk of ggufRows(model, t)) {
    if (clipping) clipChunk(chunk.values, chunk.first, t.held, clip, GGML_TYPES[t.type].blockSize, threshold);
    const out = new Uint8Array(quantizedSize(t.type, chunk.values.length));
    try {
      quantizeRow(t.type, chunk.values, out);
    } catch (e) {
      if (e instanceof UserError) throw new UserError(`tensor "${t.hf ?? t.name}": ${e.message}`, model.path);
      throw e;
    }
    yield out;
  }
}

interface Chunk {
  /** Flat GGUF index of values[0]. */
  first: number;
  values: Float32Array;
}

/** The tensor as GGUF stores it (converter transform applied), in blocks of whole rows (whole heads if permuted). */
function* ggufRows(model: Model, t: ExportTensor): Iterable<Chunk> {
  if (t.transform === "generated") return yield { first: 0, values: Float32Array.from(t.values!) };
  const hf = t.hf!;
  if (t.ne.length === 1) {
    const v = model.read(hf);
    if (t.transform === "plus_one") for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i] + 1);
    return yield { first: 0, values: t.transform === "permute" ? permuteRows(v, t.heads!, 1) : v };
  }
  const cols = t.ne[0];
  const rows = elements(t) / cols;
  if (t.transform === "transpose") {
    // stored [in = cols, out = rows]: GGUF row o is column o of the stored matrix
    const stored = model.read(hf);
    const m = new Float32Array(stored.length);
    for (let i = 0; i < cols; i++) for (let r = 0; r < rows; r++) m[r * cols + i] = stored[i * rows + r];
    const step = Math.max(1, Math.floor(CHUNK_VALUES / cols));
    for (let r = 0; r < rows; r += step)
      yield { first: r * cols, values: m.subarray(r * cols, Math.min(rows, r + step) * cols) };
    return;
  }
  const unit = t.transform === "permute" ? rows / t.heads! : 1; // whole heads move together
  const step = unit * Math.max(1, Math.floor(CHUNK_VALUES / (cols * unit)));
  const buf = new Float32Array(Math.min(rows, step) * cols);
  for (let r = 0; r < rows; r += step) {
    const r1 = Math.min(rows, r + step);
    const values = model.readRows(hf, r, r1, buf.subarray(0, (r1 - r) * cols));
    if (t.transform === "plus_one") for (let i = 0; i < values.length; i++) values[i] = Math.fround(values[i] + 1);
    yield { first: r * cols, values: t.transform === "permute" ? permuteRows(values, (r1 - r) / unit, cols) : values };
  }
}

/**
 * LlamaModel.permute on whole heads: x[heads·hd rows of `cols`] in HF order → GGUF order, where GGUF row
 * h·hd + 2i + j is HF row h·hd + j·hd/2 + i (rotate-half pairs become adjacent pairs).
 */
export function permuteRows(x: Float32Array, heads: number, cols: number): Float32Array {
  const hd = x.length / cols / heads;
  const out = new Float32Array(x.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < hd / 2; i++)
      for (let j = 0; j < 2; j++) {
        const from = (h * hd + j * (hd / 2) + i) * cols;
        out.set(x.subarray(from, from + cols), (h * hd + 2 * i + j) * cols);
      }
  return out;
}

/** tensor-pct: the k-th largest |w| of the tensor's weights that are not held out (a first pass). */
function tensorThreshold(model: Model, t: ExportTensor, fraction: number): number {
  const top = new KthLargest(tensorPctRank(elements(t) - t.held.length, fraction));
  for (const chunk of ggufRows(model, t))
    eachFreeSpan(chunk, t.held, 0, chunk.values.length, (a, b) => top.addAbs(chunk.values, a, b));
  return Math.fround(top.value());
}

/** Call f(a, b) for the spans of values[from, to) between held-out indices. */
function eachFreeSpan(
  chunk: Chunk,
  held: readonly number[],
  from: number,
  to: number,
  f: (a: number, b: number) => void,
): void {
  let a = from;
  for (const h of held) {
    const at = h - chunk.first;
    if (at < from || at >= to) continue;
    if (at > a) f(a, at);
    a = at + 1;
  }
  if (to > a) f(a, to);
}

/**
 * Clamp the values of each `block` (a ggml block along the row) that are not held out to ±T: T from the block's
 * free values (zscore: mean + K·std of |w|; block-pct: the k-th largest |w|), or the tensor's (tensor-pct, given).
 * Held-out values keep their value and take no part in T.
 */
function clipChunk(
  values: Float32Array,
  first: number,
  held: readonly number[],
  clip: Clip,
  block: number,
  tensorT: number,
): void {
  const chunk = { first, values };
  const moments = new AbsMoments();
  const top = new KthLargest(1);
  for (let b = 0; b < values.length; b += block) {
    let t = tensorT;
    if (clip.method === "zscore") {
      moments.reset();
      eachFreeSpan(chunk, held, b, b + block, (x, y) => moments.addAbs(values, x, y));
      t = moments.threshold(clip.k);
    } else if (clip.method === "block-pct") {
      let free = 0;
      eachFreeSpan(chunk, held, b, b + block, (x, y) => (free += y - x));
      top.reset(blockPctRank(free, clip.fraction));
      eachFreeSpan(chunk, held, b, b + block, (x, y) => top.addAbs(values, x, y));
      t = top.value();
    }
    if (!(t >= 0)) continue; // every value held out
    eachFreeSpan(chunk, held, b, b + block, (x, y) => {
      for (let i = x; i < y; i++) values[i] = values[i] > t ? t : values[i] < -t ? -t : values[i];
    });
  }
}
