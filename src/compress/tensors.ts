// Which tensors of a model a compression quantizes, and which of their weights it holds out: the one choice the
// in-memory comparison and the checkpoint writers share (by stored name, as the writers see the files).
import type { Model } from "../engine/model.js";
import { locateWeight } from "../eval/interventions.js";
import type { KeepRequest } from "../quant/packed-writer.js";
import { defaultQuantizable } from "../quant/packed-writer.js";

/** Beyond the decoder's linear weights (the default, the paper's choice): the LM head, the embeddings. */
export interface Selection {
  includeHead?: boolean;
  includeEmbeddings?: boolean;
}

export interface SelectedTensor {
  /** Canonical name (what overrides and the engine use). */
  name: string;
  /** The name in the checkpoint's files (what the writers use). */
  stored: string;
  shape: number[];
  elements: number;
  /** Bytes as the source stores it. */
  sourceBytes: number;
}

/** The tensors to quantize, in the architecture's order: every linear weight of the decoder (not norms, embeddings
 * or the head), plus the head and the embeddings when asked. A tied head is the embedding matrix. */
export function selectTensors(model: Model, s: Selection = {}): SelectedTensor[] {
  const { arch, spec } = model;
  const embeddings = [arch.embedding, ...(arch.positionEmbedding ? [arch.positionEmbedding] : [])];
  const out: SelectedTensor[] = [];
  for (const [name] of arch.tensors(spec)) {
    const info = model.info(name);
    const chosen =
      defaultQuantizable(info.name, info.shape) ||
      (s.includeHead && name === arch.lmHead(spec)) ||
      (s.includeEmbeddings && embeddings.includes(name) && info.shape.length >= 2);
    if (!chosen) continue;
    const elements = info.shape.reduce((a, b) => a * b, 1);
    out.push({ name, stored: info.name, shape: [...info.shape], elements, sourceBytes: info.bytes });
  }
  return out;
}

/** Whether the embedding lookup reads a selected tensor (the embeddings, or a head tied to them). */
export function quantizesEmbeddingLookup(model: Model, tensors: readonly SelectedTensor[]): boolean {
  const { arch } = model;
  return tensors.some((t) => t.name === arch.embedding || t.name === arch.positionEmbedding);
}

/** A down_proj weight by [layer, row = output channel, column = input channel] (as a scan reports it). */
export interface WeightSite {
  layer: number;
  row: number;
  column: number;
}

/** A held-out weight: where it is stored and its exact value. */
export interface HeldWeight extends WeightSite {
  /** Canonical and stored tensor names. */
  tensor: string;
  stored: string;
  /** Position in the stored tensor ([column, row] where it is stored [in, out]) and its flat index. */
  coordinates: [number, number];
  index: number;
  value: number;
}

/** Locate each weight in its stored tensor (GPT-2's Conv1D transposed), checked against the model; a weight named
 * twice is held out once. */
export function heldWeights(model: Model, sites: readonly WeightSite[]): HeldWeight[] {
  const held = new Map<string, HeldWeight>();
  for (const { layer, row, column } of sites) {
    const w = locateWeight(model, { layer, row, column });
    const cols = model.shape(w.tensor)[1];
    const index = w.index[0] * cols + w.index[1];
    const stored = model.info(w.tensor).name;
    held.set(`${w.tensor}@${index}`, {
      layer,
      row,
      column,
      tensor: w.tensor,
      stored,
      coordinates: w.index,
      index,
      value: w.value,
    });
  }
  return [...held.values()];
}

/** Held-out flat indices of one tensor, increasing. */
export function keptIndices(held: readonly HeldWeight[], tensor: string): number[] {
  return [...new Set(held.filter((h) => h.tensor === tensor).map((h) => h.index))].sort((a, b) => a - b);
}

/** The writers' form of the held-out weights. */
export function keepRequests(held: readonly HeldWeight[]): KeepRequest[] {
  return held.map((h) => ({ tensor: h.stored, coordinates: [...h.coordinates] }));
}

/** The writers' `include`: exactly the selected tensors, by stored name. */
export function includeOf(tensors: readonly SelectedTensor[]): (name: string) => boolean {
  const stored = new Set(tensors.map((t) => t.stored));
  return (name) => stored.has(name);
}
